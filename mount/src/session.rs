//! Mounting: the FUSE session of a [`RepoFs`], and a guard that unmounts it when dropped,
//! so that however the command ends (a signal drops it) the mount point is given back.

use crate::fs::RepoFs;
use fuser::{Config, MountOption, Session, SessionACL, SessionUnmounter};
use std::path::Path;

pub struct Mounted {
    session: Session<RepoFs>,
}

/// Unmounts on drop, unless the filesystem is gone already.
pub struct UnmountOnDrop(Option<SessionUnmounter>);

impl Drop for UnmountOnDrop {
    fn drop(&mut self) {
        if let Some(mut u) = self.0.take() {
            // Already unmounted from outside is fine.
            let _ = u.unmount();
        }
    }
}

impl Mounted {
    /// Mount `fs` read-only at `at`. `allow_other` lets other users in (then the kernel checks
    /// permissions, unless `no_default_permissions`).
    pub fn mount(
        fs: RepoFs,
        at: &Path,
        fs_name: &str,
        allow_other: bool,
        no_default_permissions: bool,
    ) -> std::io::Result<(Mounted, UnmountOnDrop)> {
        let mut cfg = Config::default();
        cfg.mount_options = vec![MountOption::RO, MountOption::FSName(fs_name.to_owned())];
        if allow_other {
            cfg.acl = SessionACL::All;
            if !no_default_permissions {
                cfg.mount_options.push(MountOption::DefaultPermissions);
            }
        }
        let mut session = Session::new(fs, at, &cfg)?;
        let unmount = UnmountOnDrop(Some(session.unmount_callable()));
        Ok((Mounted { session }, unmount))
    }

    /// Serve requests until the filesystem is unmounted.
    pub fn serve(self) -> std::io::Result<()> {
        self.session.run()
    }
}
