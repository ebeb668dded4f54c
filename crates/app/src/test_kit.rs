//! What the app's tests share: a ward laptop of site 01 set up through the app itself, with a
//! nurse `li` (nurse-password) and a data manager `zhou` (dm-password-1) added by the
//! administrator `admin` (admin-password), logged in as the nurse.

use std::path::Path;

use ecrf_core::Role;

use crate::App;
use crate::dto::SetupInput;

/// The app on `dir/ward.ecrf` (demo store beside it), set up and logged in as `li`.
pub(crate) fn site_01(dir: &Path) -> App {
    let mut app = App::new(dir.join("ward.ecrf"), dir.join("demo.ecrf")).expect("the app");
    app.setup(SetupInput {
        site: "01".into(),
        admin_user: "admin".into(),
        admin_name: "Admin".into(),
        password: "admin-password".into(),
    })
    .expect("set the laptop up");
    app.add_user("li", "Li Na", Role::Nurse, "nurse-password")
        .expect("add the nurse");
    app.add_user("zhou", "Zhou", Role::DataManager, "dm-password-1")
        .expect("add the data manager");
    app.lock();
    app.login("li", "nurse-password")
        .expect("the nurse logs in");
    app
}
