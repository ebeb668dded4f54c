//! Printouts: blank CRFs and a subject's filled casebook as PDF, saved beside the store.

use super::*;

impl App {
    /// Where printouts are saved: `printouts/` beside the store.
    pub(crate) fn printouts_dir(&self) -> PathBuf {
        self.path()
            .parent()
            .map(|p| p.join("printouts"))
            .unwrap_or_else(|| PathBuf::from("printouts"))
    }

    /// Prints the blank CRF book, or one blank form when `form` is given.
    pub fn print_blank(&mut self, form: Option<&str>) -> AppResult<Printout> {
        let session = self.session()?;
        let opts = self.print_options(&session);
        let study = Arc::clone(&self.study);
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
        let printed = printer
            .subject(store.study(), &store.casebook(subject)?, &opts)
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

    /// Writes the PDF and hands it to the desktop's viewer (`xdg-open`), unless
    /// `ECRF_NO_OPEN` is set (tests).
    pub(crate) fn save_printout(
        &self,
        name: &str,
        printed: &ecrf_pdf::Printed,
    ) -> AppResult<Printout> {
        let dir = self.printouts_dir();
        std::fs::create_dir_all(&dir)
            .map_err(|e| err(ErrorCode::Internal, format!("{}: {e}", dir.display())))?;
        let path = dir.join(name);
        printed
            .write_to(&path)
            .map_err(|e| err(ErrorCode::Internal, e.to_string()))?;
        let opened = std::env::var_os("ECRF_NO_OPEN").is_none()
            && std::process::Command::new("xdg-open")
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
