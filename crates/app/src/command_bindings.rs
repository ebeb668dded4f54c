//! `ui/src/commands.ts`: one typed function per Tauri command, generated from the commands
//! themselves (`src-tauri/src/main.rs`, read with `syn`), and one typed listener per event
//! in [`crate::dto::EVENTS`]. A renamed command, argument or return type changes the file, so
//! the test below fails until it is regenerated, and then `tsc` fails wherever the UI still
//! uses the old shape. Rewrite it with `UPDATE_BINDINGS=1 cargo test -p ecrf-app bindings`.

use std::fmt::Write;

use syn::{FnArg, GenericArgument, Item, Pat, PathArguments, ReturnType, Type};

/// Parameters Tauri fills in itself: never sent by the UI.
const INJECTED: [&str; 4] = ["State", "Window", "AppHandle", "Webview"];

/// `save_form` → `saveForm` (Tauri's own renaming of argument keys, and our function names).
fn camel(snake: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The TypeScript of a Rust type at the boundary; `names` collects the types to import.
fn ts(ty: &Type, names: &mut Vec<String>) -> Result<String, String> {
    match ty {
        Type::Tuple(t) if t.elems.is_empty() => Ok("void".into()),
        Type::Reference(r) => ts(&r.elem, names),
        Type::Path(p) => {
            let seg = p.path.segments.last().ok_or("an empty type path")?;
            let name = seg.ident.to_string();
            let inner = || -> Result<&Type, String> {
                match &seg.arguments {
                    PathArguments::AngleBracketed(a) => a
                        .args
                        .iter()
                        .find_map(|g| match g {
                            GenericArgument::Type(t) => Some(t),
                            _ => None,
                        })
                        .ok_or_else(|| format!("{name} without a type argument")),
                    _ => Err(format!("{name} without a type argument")),
                }
            };
            Ok(match name.as_str() {
                "String" | "str" => "string".into(),
                "bool" => "boolean".into(),
                "u8" | "u16" | "u32" | "i32" | "f64" | "usize" => "number".into(),
                "Option" => format!("{} | null", ts(inner()?, names)?),
                "Vec" => format!("Array<{}>", ts(inner()?, names)?),
                "AppResult" => ts(inner()?, names)?,
                _ => {
                    if !names.contains(&name) {
                        names.push(name.clone());
                    }
                    name
                }
            })
        }
        _ => Err("a type the generator does not know".into()),
    }
}

fn is_command(f: &syn::ItemFn) -> bool {
    f.attrs.iter().any(|a| {
        let segs: Vec<String> = a
            .path()
            .segments
            .iter()
            .map(|s| s.ident.to_string())
            .collect();
        segs == ["tauri", "command"]
    })
}

fn injected(ty: &Type) -> bool {
    match ty {
        Type::Path(p) => p
            .path
            .segments
            .last()
            .is_some_and(|s| INJECTED.contains(&s.ident.to_string().as_str())),
        _ => false,
    }
}

/// The whole `commands.ts` text for the shell's source `main_rs`.
pub fn typescript(main_rs: &str) -> Result<String, String> {
    let file = syn::parse_file(main_rs).map_err(|e| format!("src-tauri/src/main.rs: {e}"))?;
    let mut names = Vec::new();
    let mut body = String::new();
    for item in &file.items {
        let Item::Fn(f) = item else { continue };
        if !is_command(f) {
            continue;
        }
        let command = f.sig.ident.to_string();
        let mut params = Vec::new();
        let mut keys = Vec::new();
        for arg in &f.sig.inputs {
            let FnArg::Typed(arg) = arg else {
                return Err(format!("{command}: a command takes no self"));
            };
            if injected(&arg.ty) {
                continue;
            }
            let Pat::Ident(id) = &*arg.pat else {
                return Err(format!("{command}: arguments must be plain names"));
            };
            let key = camel(&id.ident.to_string());
            let ty = ts(&arg.ty, &mut names).map_err(|e| format!("{command}({key}): {e}"))?;
            params.push(format!("{key}: {ty}"));
            keys.push(key);
        }
        let ret = match &f.sig.output {
            ReturnType::Default => "void".to_string(),
            ReturnType::Type(_, t) => ts(t, &mut names).map_err(|e| format!("{command}: {e}"))?,
        };
        let args = if keys.is_empty() {
            String::new()
        } else {
            format!(", {{ {} }}", keys.join(", "))
        };
        let _ = writeln!(
            body,
            "  {}: ({}): Promise<{ret}> => invoke<{ret}>(\"{command}\"{args}),",
            camel(&command),
            params.join(", "),
        );
    }
    let mut events = String::new();
    for (name, payload) in crate::dto::EVENTS {
        let ty = payload();
        if !names.contains(&ty) {
            names.push(ty.clone());
        }
        let _ = writeln!(
            events,
            "  {}: (handler: (payload: {ty}) => void): Promise<UnlistenFn> =>\n    listen<{ty}>(\"{name}\", (e) => handler(e.payload)),",
            camel(&name.replace('-', "_")),
        );
    }
    names.sort();
    Ok(format!(
        "// Generated from src-tauri/src/main.rs by crates/app/src/command_bindings.rs. Do not edit.\n\
         import {{ invoke }} from \"@tauri-apps/api/core\";\n\
         import {{ listen, type UnlistenFn }} from \"@tauri-apps/api/event\";\n\
         import type {{ {} }} from \"./bindings\";\n\n\
         /** Every command of the desktop shell, with its arguments and reply. */\n\
         export const commands = {{\n{body}}};\n\n\
         /** Every event the shell sends, with its payload. */\n\
         export const events = {{\n{events}}};\n",
        names.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_command_bindings_are_up_to_date() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let main_rs = std::fs::read_to_string(root.join("src-tauri/src/main.rs")).unwrap();
        let fresh = typescript(&main_rs).unwrap();
        let path = root.join("ui/src/commands.ts");
        if std::env::var("UPDATE_BINDINGS").is_ok() {
            std::fs::write(&path, &fresh).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == fresh,
            "ui/src/commands.ts is out of date: run UPDATE_BINDINGS=1 cargo test -p ecrf-app bindings"
        );
    }

    #[test]
    fn a_command_becomes_a_typed_function_and_injected_parameters_are_left_out() {
        let src = r#"
            #[tauri::command]
            fn save_form(s: State<'_, Shell>, subject_no: String, entries: Vec<Entry>, reason: Option<String>) -> AppResult<SaveReply> { todo!() }
            #[tauri::command(async)]
            fn sync_now(s: State<'_, Shell>, window: tauri::Window) -> AppResult<()> { todo!() }
            fn helper(x: u32) -> u32 { x }
        "#;
        let out = typescript(src).unwrap();
        assert!(out.contains(
            "saveForm: (subjectNo: string, entries: Array<Entry>, reason: string | null): Promise<SaveReply> => invoke<SaveReply>(\"save_form\", { subjectNo, entries, reason }),"
        ), "{out}");
        assert!(
            out.contains("syncNow: (): Promise<void> => invoke<void>(\"sync_now\"),"),
            "{out}"
        );
        assert!(!out.contains("helper"), "{out}");
        assert!(
            out.contains("import type { Entry, SaveReply, SyncProgressDto }"),
            "{out}"
        );
    }

    #[test]
    fn a_type_it_cannot_say_in_typescript_is_an_error_naming_the_command() {
        let src = "#[tauri::command] fn odd(s: State<'_, Shell>, x: (u32, u32)) -> AppResult<()> { todo!() }";
        let e = typescript(src).unwrap_err();
        assert!(e.contains("odd(x)"), "{e}");
    }
}
