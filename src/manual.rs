//! `--man` and `--completions`: the manual page and the shell completions,
//! generated from the same tables as `--help` (`config::FLAGS`, `ENV_VARS`,
//! `SIGNALS`, `EXIT_CODES`), so none of them can name a flag the gateway
//! does not take or miss one it does.

use crate::config::{
    Flag, DESCRIPTION, DOCS, EARLY_EXITS, ENV_VARS, EXIT_CODES, FLAGS, METHODS, SIGNALS, SUMMARY,
};

/// A shell `--completions` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shell {
    /// bash (`complete -F`).
    Bash,
    /// zsh (`#compdef`, `_arguments`).
    Zsh,
    /// fish (`complete -c`).
    Fish,
}

impl Shell {
    /// `bash`, `zsh` or `fish`.
    pub fn parse(name: &str) -> Option<Shell> {
        match name {
            "bash" => Some(Shell::Bash),
            "zsh" => Some(Shell::Zsh),
            "fish" => Some(Shell::Fish),
            _ => None,
        }
    }
}

/// What a flag's value is, for completion.
enum Value<'a> {
    /// A switch.
    None,
    /// One of these words.
    Choice(Vec<&'a str>),
    /// A file or directory path.
    Path,
    /// Anything (a number, a size, a name).
    Free,
}

fn value_of(flag: &Flag) -> Value<'static> {
    match flag.value {
        None => Value::None,
        Some(v) if v.contains('|') => Value::Choice(v.split('|').collect()),
        Some("FILE" | "PATH" | "DIR") => Value::Path,
        Some(_) => Value::Free,
    }
}

/// Escapes text for roff: backslashes, and a leading `.` or `'`.
fn roff(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    match escaped.chars().next() {
        Some('.' | '\'') => format!("\\&{escaped}"),
        _ => escaped,
    }
}

/// The manual page, in roff (`man -l -` shows it).
pub fn man_page(version: &str) -> String {
    let mut page = format!(
        ".TH TUI-GATEWAY 1 \"\" \"tui-gateway {version}\" \"User Commands\"\n\
         .SH NAME\ntui\\-gateway \\- {}\n\
         .SH SYNOPSIS\n\
         .B tui\\-gateway\n[\\fIFLAGS\\fR]\n.br\n\
         .B tui\\-gateway\n[\\fIFLAGS\\fR] \\fB\\-\\-\\fR \\fICMD\\fR [\\fIARGS\\fR...]\n.br\n\
         .B tui\\-gateway\n\\fB\\-\\-session\\fR \\fINAME\\fR [\\fIFLAGS\\fR] [\\fB\\-\\-\\fR \\fICMD\\fR [\\fIARGS\\fR...]]\n.br\n\
         .B tui\\-gateway\n\\fBattach\\fR \\fINAME\\fR [\\fB\\-\\-frames\\-received\\fR \\fIN\\fR|\\fBlatest\\fR] [\\fB\\-\\-epoch\\fR \\fIEPOCH\\fR] [\\fB\\-\\-takeover\\fR]\n.br\n\
         .B tui\\-gateway\n\\fBsessions\\fR [\\fB\\-\\-json\\fR]\n.br\n\
         .B tui\\-gateway\n\\fB\\-\\-man\\fR | \\fB\\-\\-completions\\fR \\fIbash|zsh|fish\\fR | \\fB\\-\\-help\\fR | \\fB\\-\\-version\\fR\n\
         .SH DESCRIPTION\n",
        roff(SUMMARY)
    );
    for paragraph in DESCRIPTION.split("\n\n") {
        page.push_str(&format!("{}\n.PP\n", roff(&paragraph.replace('\n', " "))));
    }
    page.push_str(".SH METHODS\n");
    for (what, list) in METHODS {
        page.push_str(&format!(".TP\n.B {}\n{}\n", roff(what), roff(list)));
    }
    page.push_str(".SH OPTIONS\nSizes take a plain byte count or a KiB/MiB/GiB suffix.\n");
    for flag in FLAGS {
        let value = flag
            .value
            .map(|v| format!(" \\fI{}\\fR", roff(v)))
            .unwrap_or_default();
        page.push_str(&format!(
            ".TP\n\\fB{}\\fR{value}\n{} [default: {}]\n",
            roff(flag.name),
            roff(flag.help),
            roff(&flag.default())
        ));
    }
    for (names, what) in EARLY_EXITS {
        page.push_str(&format!(".TP\n\\fB{}\\fR\n{}\n", roff(names), roff(what)));
    }
    page.push_str(
        ".SH ENVIRONMENT\nA flag on the command line wins; an empty variable counts as unset.\n",
    );
    for (name, _, what) in ENV_VARS {
        page.push_str(&format!(".TP\n.B {}\n{}\n", roff(name), roff(what)));
    }
    page.push_str(".SH SIGNALS\n");
    for (signals, what) in SIGNALS {
        page.push_str(&format!(".TP\n.B {}\n{}\n", roff(signals), roff(what)));
    }
    page.push_str(".SH EXIT STATUS\n");
    for (code, what) in EXIT_CODES {
        page.push_str(&format!(".TP\n.B {}\n{}\n", roff(code), roff(what)));
    }
    page.push_str(&format!(
        ".SH SEE ALSO\n{}\n",
        roff(&DOCS.replace('\n', " "))
    ));
    page
}

/// A completion script for `shell`.
pub fn completions(shell: Shell) -> String {
    match shell {
        Shell::Bash => bash(),
        Shell::Zsh => zsh(),
        Shell::Fish => fish(),
    }
}

fn early_exit_names() -> Vec<&'static str> {
    EARLY_EXITS
        .iter()
        .flat_map(|(names, _)| names.split(", "))
        .map(|n| n.split(' ').next().unwrap_or(n))
        .collect()
}

fn bash() -> String {
    let mut words: Vec<&str> = FLAGS.iter().map(|f| f.name).collect();
    words.extend(early_exit_names());
    words.push("--");
    let mut cases = String::new();
    for flag in FLAGS {
        let action = match value_of(flag) {
            Value::None => continue,
            Value::Choice(choices) => {
                format!(
                    "COMPREPLY=($(compgen -W '{}' -- \"$cur\"))",
                    choices.join(" ")
                )
            }
            Value::Path => "COMPREPLY=($(compgen -f -- \"$cur\"))".to_owned(),
            Value::Free => "COMPREPLY=()".to_owned(),
        };
        cases.push_str(&format!("        {}) {action}; return ;;\n", flag.name));
    }
    format!(
        "# bash completion for tui-gateway (generated by tui-gateway --completions bash)\n\
         _tui_gateway() {{\n    \
             local cur prev i\n    \
             cur=\"${{COMP_WORDS[COMP_CWORD]}}\"\n    \
             prev=\"${{COMP_WORDS[COMP_CWORD-1]}}\"\n    \
             for ((i = 1; i < COMP_CWORD; i++)); do\n        \
                 if [[ \"${{COMP_WORDS[i]}}\" == -- ]]; then\n            \
                     COMPREPLY=($(compgen -c -- \"$cur\"))\n            \
                     return\n        \
                 fi\n    \
             done\n    \
             case \"$prev\" in\n{cases}        \
                 --completions) COMPREPLY=($(compgen -W 'bash zsh fish' -- \"$cur\")); return ;;\n    \
             esac\n    \
             local commands=''\n    \
             ((COMP_CWORD == 1)) && commands='attach sessions'\n    \
             COMPREPLY=($(compgen -W \"$commands {}\" -- \"$cur\"))\n\
         }}\n\
         complete -F _tui_gateway tui-gateway\n",
        words.join(" ")
    )
}

/// Quotes text for a zsh `_arguments` description inside single quotes.
fn zsh_text(text: &str) -> String {
    text.replace('\'', "'\\''")
        .replace('[', "\\[")
        .replace(']', "\\]")
        .replace(':', "\\:")
}

fn zsh() -> String {
    let mut specs = String::new();
    for flag in FLAGS {
        let help = zsh_text(flag.help);
        let spec = match value_of(flag) {
            Value::None => format!("'{}[{help}]'", flag.name),
            Value::Choice(choices) => format!(
                "'{}=[{help}]:{}:({})'",
                flag.name,
                zsh_text(flag.value.unwrap_or("")),
                choices.join(" ")
            ),
            Value::Path => format!(
                "'{}=[{help}]:{}:_files'",
                flag.name,
                flag.value.unwrap_or("PATH")
            ),
            Value::Free => format!(
                "'{}=[{help}]:{}: '",
                flag.name,
                flag.value.unwrap_or("VALUE")
            ),
        };
        specs.push_str(&format!("    {spec} \\\n"));
    }
    format!(
        "#compdef tui-gateway\n\
         # zsh completion for tui-gateway (generated by tui-gateway --completions zsh)\n\
         _arguments -s -S \\\n{specs}    \
         '(- *)'{{-h,--help}}'[print the help]' \\\n    \
         '(- *)'{{-V,--version}}'[print the version]' \\\n    \
         '(- *)--man[print the manual page]' \\\n    \
         '(- *)--completions[print a completion script]:shell:(bash zsh fish)' \\\n    \
         '*::backend command:_normal'\n"
    )
}

/// Quotes text for fish inside single quotes.
fn fish_text(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\'', "\\'")
}

fn fish() -> String {
    let mut out = String::from(
        "# fish completion for tui-gateway (generated by tui-gateway --completions fish)\n",
    );
    for flag in FLAGS {
        let name = flag.name.trim_start_matches("--");
        let help = fish_text(flag.help);
        let value = match value_of(flag) {
            Value::None => String::new(),
            Value::Choice(choices) => format!(" -x -a '{}'", choices.join(" ")),
            Value::Path => " -r -F".to_owned(),
            Value::Free => " -x".to_owned(),
        };
        out.push_str(&format!(
            "complete -c tui-gateway -l {name}{value} -d '{help}'\n"
        ));
    }
    out.push_str(
        "complete -c tui-gateway -s h -l help -d 'print the help'\n\
         complete -c tui-gateway -s V -l version -d 'print the version'\n\
         complete -c tui-gateway -l man -d 'print the manual page'\n\
         complete -c tui-gateway -l completions -x -a 'bash zsh fish' -d 'print a completion script'\n\
         complete -c tui-gateway -n __fish_use_subcommand -f -a attach -d 'relay stdio to a running session'\n\
         complete -c tui-gateway -n __fish_use_subcommand -f -a sessions -d 'list the running sessions'\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_flag_and_variable_is_in_the_manual_and_every_completion() {
        let page = man_page("0.0.0");
        assert!(page.starts_with(".TH TUI-GATEWAY 1"));
        for flag in FLAGS {
            assert!(page.contains(&roff(flag.name)), "man lacks {}", flag.name);
            for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
                let script = completions(shell);
                let needle = match shell {
                    Shell::Fish => format!("-l {}", flag.name.trim_start_matches("--")),
                    _ => flag.name.to_owned(),
                };
                assert!(script.contains(&needle), "{shell:?} lacks {}", flag.name);
            }
        }
        for (name, ..) in ENV_VARS {
            assert!(page.contains(&roff(name)), "man lacks {name}");
        }
        for (code, _) in EXIT_CODES {
            assert!(
                page.contains(&format!(".B {code}\n")),
                "man lacks exit {code}"
            );
        }
    }

    #[test]
    fn choices_and_paths_complete_as_such() {
        let bash = completions(Shell::Bash);
        assert!(bash.contains("--sigint) COMPREPLY=($(compgen -W 'ignore shutdown'"));
        assert!(bash.contains("--trace) COMPREPLY=($(compgen -f"));
        let zsh = completions(Shell::Zsh);
        assert!(zsh.contains("'--backend-ready=["), "{zsh}");
        assert!(zsh.contains(":(event none)'"), "{zsh}");
        let fish = completions(Shell::Fish);
        assert!(fish.contains("-l crash-log -r -F"), "{fish}");
        assert_eq!(Shell::parse("tcsh"), None);
    }

    #[test]
    fn roff_escapes_what_roff_would_read() {
        assert_eq!(roff(".hidden"), "\\&.hidden");
        assert_eq!(roff("a\\b-c"), "a\\eb\\-c");
    }
}
