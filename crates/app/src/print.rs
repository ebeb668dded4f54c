//! Printouts: blank CRFs and a subject's filled casebook as PDF, saved in the folder the user
//! chose for printouts (remembered per user); never in a folder the app picks itself, because a
//! printout is not encrypted. The UI says so beside every printout, CSV and export.

use super::*;

/// The preference that remembers where the user saves printouts and audit CSVs.
const PRINT_FOLDER: &str = "print_folder";

/// The program that opens a saved PDF in the desktop's viewer.
#[cfg(not(windows))]
const OPENER: &str = "xdg-open";
/// Windows: Explorer opens a file with the viewer associated with its type.
#[cfg(windows)]
const OPENER: &str = "explorer";

impl App {
    /// The folder the user chose for printouts, if any.
    pub fn print_folder(&self) -> AppResult<Option<String>> {
        Ok(self
            .store()?
            .preference(PRINT_FOLDER)?
            .filter(|f| !f.trim().is_empty()))
    }

    /// Remembers where the user saves printouts and audit CSVs: an existing folder.
    pub fn set_print_folder(&mut self, folder: &str) -> AppResult<SessionDto> {
        let folder = folder.trim();
        if folder.is_empty() || !Path::new(folder).is_dir() {
            return Err(err(
                ErrorCode::Invalid,
                format!(
                    "printout folder {folder:?}: choose an existing folder / 打印文件夹 \
                     {folder:?}：请选择一个已存在的文件夹"
                ),
            ));
        }
        self.store()?.set_preference(PRINT_FOLDER, folder)?;
        self.session()
    }

    /// Where printouts are saved: the folder the user chose, or an error asking for one.
    pub(crate) fn printouts_dir(&self) -> AppResult<PathBuf> {
        let folder = self.print_folder()?.ok_or_else(|| {
            err(
                ErrorCode::Invalid,
                "printout folder: choose where printouts are saved first (they are not \
                 encrypted) / 打印文件夹：请先选择打印文件的保存位置（文件未加密）",
            )
        })?;
        let dir = PathBuf::from(folder);
        if !dir.is_dir() {
            return Err(err(
                ErrorCode::Invalid,
                format!(
                    "printout folder {}: it is no longer there; choose another / 打印文件夹 {}：\
                     已不存在，请重新选择",
                    dir.display(),
                    dir.display()
                ),
            ));
        }
        Ok(dir)
    }

    /// Prints the blank CRF book, or one blank form when `form` is given.
    pub fn print_blank(&mut self, form: Option<&str>) -> AppResult<Printout> {
        let session = self.session()?;
        let opts = self.print_options(&session);
        // The blank forms of the version in force at the site today.
        let study = match &self.store {
            Some(store) => store.study_in_force()?,
            None => Arc::clone(&self.study),
        };
        let printed = match form {
            None => self.printer()?.blank_book(&study, &opts),
            Some(f) => self.printer()?.blank_form(&study, f, &opts),
        }
        .map_err(|e| err(ErrorCode::Invalid, e.to_string()))?;
        let name = format!("blank-{}-{}.pdf", form.unwrap_or("book"), session.lang);
        self.save_printout(&name, &printed)
    }

    /// Prints a subject's filled CRF with its audit appendix.
    pub fn print_subject(&mut self, subject: &str) -> AppResult<Printout> {
        let session = self.session()?;
        let opts = self.print_options(&session);
        self.printer()?;
        let (Some(printer), Some(store)) = (&self.printer, &self.store) else {
            return Err(err(ErrorCode::NotLoggedIn, "locked: log in to continue"));
        };
        // Every version's items: each form page prints the version it was entered under.
        let printed = printer
            .subject(
                &store.definitions()?.merged(),
                &store.casebook(subject)?,
                &opts,
            )
            .map_err(|e| err(ErrorCode::Invalid, e.to_string()))?;
        let stamp = Local::now().format("%Y%m%d-%H%M%S");
        self.save_printout(&format!("{subject}-{stamp}.pdf"), &printed)
    }

    pub(crate) fn print_options(&self, session: &SessionDto) -> ecrf_pdf::PrintOptions {
        let who = if session.name.is_empty() {
            session.user.clone()
        } else {
            format!("{} ({})", session.name, session.user)
        };
        let mut opts = ecrf_pdf::PrintOptions::now(session.lang.code(), &who);
        opts.site = Some(session.site.clone());
        opts
    }

    /// The printer, with its font loaded once per run.
    pub(crate) fn printer(&mut self) -> AppResult<&ecrf_pdf::Printer> {
        if self.printer.is_none() {
            let p =
                ecrf_pdf::Printer::new().map_err(|e| err(ErrorCode::Internal, e.to_string()))?;
            self.printer = Some(p);
        }
        self.printer
            .as_ref()
            .ok_or_else(|| err(ErrorCode::Internal, "no printer"))
    }

    /// Writes the PDF and hands it to the desktop's viewer ([`OPENER`]), unless
    /// `ECRF_NO_OPEN` is set (tests).
    pub(crate) fn save_printout(
        &self,
        name: &str,
        printed: &ecrf_pdf::Printed,
    ) -> AppResult<Printout> {
        let path = self.printouts_dir()?.join(name);
        printed
            .write_to(&path)
            .map_err(|e| err(ErrorCode::Internal, e.to_string()))?;
        let opened = std::env::var_os("ECRF_NO_OPEN").is_none()
            && std::process::Command::new(OPENER)
                .arg(&path)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .is_ok();
        Ok(Printout {
            path: path.display().to_string(),
            pages: printed.pages as u32,
            opened,
        })
    }
}
