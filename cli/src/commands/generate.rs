//! `arca generate`: shell completions and man pages, with restic's flags (`-` writes a
//! completion to standard output).

use anyhow::{bail, Context, Result};
use clap::Args;
use clap_complete::Shell;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct GenerateArgs {
    /// write bash completion file (`-` for stdout)
    #[arg(long, value_name = "file")]
    bash_completion: Option<PathBuf>,
    /// write fish completion file (`-` for stdout)
    #[arg(long, value_name = "file")]
    fish_completion: Option<PathBuf>,
    /// write zsh completion file (`-` for stdout)
    #[arg(long, value_name = "file")]
    zsh_completion: Option<PathBuf>,
    /// write powershell completion file (`-` for stdout)
    #[arg(long, value_name = "file")]
    powershell_completion: Option<PathBuf>,
    /// write man pages to directory
    #[arg(long, value_name = "directory")]
    man: Option<PathBuf>,
}

pub(super) fn run(a: &GenerateArgs) -> Result<i32> {
    let completions = [
        (Shell::Bash, &a.bash_completion),
        (Shell::Fish, &a.fish_completion),
        (Shell::Zsh, &a.zsh_completion),
        (Shell::PowerShell, &a.powershell_completion),
    ];
    if a.man.is_none() && completions.iter().all(|(_, f)| f.is_none()) {
        bail!("nothing to do, please specify at least one output file/dir");
    }
    if let Some(dir) = &a.man {
        println!("writing man pages to directory {}", dir.display());
        write_man_pages(dir)?;
    }
    for (shell, file) in completions {
        if let Some(file) = file {
            write_completion(shell, file)?;
        }
    }
    Ok(0)
}

fn write_completion(shell: Shell, file: &Path) -> Result<()> {
    let mut cmd = crate::cli_command();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "arca", &mut buf);
    if file.as_os_str() == "-" {
        std::io::stdout().write_all(&buf)?;
        return Ok(());
    }
    std::fs::write(file, &buf).with_context(|| format!("writing {}", file.display()))
}

/// One page for `arca` and one per command and subcommand (`arca-key-add.1`), as restic
/// names them.
fn write_man_pages(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let root = crate::cli_command();
    let mut stack = vec![(root, "arca".to_string())];
    while let Some((cmd, name)) = stack.pop() {
        let mut page = Vec::new();
        // The synopsis names the whole command (`arca key add`), the file joins it with `-`.
        clap_mangen::Man::new(cmd.clone().bin_name(name.replace('-', " ")))
            .title(name.to_uppercase())
            .render(&mut page)
            .with_context(|| format!("rendering the page of {name}"))?;
        let path = dir.join(format!("{name}.1"));
        std::fs::write(&path, page).with_context(|| format!("writing {}", path.display()))?;
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            stack.push((sub.clone(), format!("{name}-{}", sub.get_name())));
        }
    }
    Ok(())
}
