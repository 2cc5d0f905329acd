use super::*;
use clap::{CommandFactory, Parser};

const README: &str = include_str!("../../README.md");
const EXAMPLE_TOML: &str = include_str!("../../webcall.example.toml");

/// Every long flag but `--config`, `--help` and `--version`.
fn setting_flags() -> Vec<String> {
    Cli::command()
        .get_arguments()
        .filter_map(|arg| arg.get_long())
        .filter(|long| !matches!(*long, "config" | "help" | "version"))
        .map(str::to_owned)
        .collect()
}

/// The example file with every commented-out setting (`# key = value`) switched on.
fn example_with_everything_on() -> String {
    EXAMPLE_TOML
        .lines()
        .map(|line| match line.strip_prefix("# ") {
            Some(rest) if rest.split_once(" = ").is_some_and(|(k, _)| is_key(k)) => rest,
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_key(text: &str) -> bool {
    !text.is_empty() && text.chars().all(|c| c.is_ascii_lowercase() || c == '_')
}

#[test]
fn every_setting_has_one_name_in_help_readme_and_example() {
    let help = Cli::command().render_long_help().to_string();
    let example = example_with_everything_on();
    let example_keys: Vec<&str> = example
        .lines()
        .filter_map(|line| line.split_once(" = ").map(|(k, _)| k.trim()))
        .filter(|k| is_key(k))
        .collect();
    for flag in setting_flags() {
        assert!(
            help.contains(&format!("--{flag}")),
            "--{flag} missing from --help"
        );
        assert!(
            README
                .lines()
                .any(|l| l.starts_with(&format!("| `--{flag} ")) || l.starts_with(&format!("| `--{flag}`"))),
            "--{flag} missing from the README's table of flags"
        );
        let key = flag.replace('-', "_");
        assert!(
            example_keys.contains(&key.as_str()),
            "{key} missing from webcall.example.toml"
        );
    }
    let parsed: Result<FileConfig, _> = toml::from_str(&example);
    assert!(
        parsed.is_ok(),
        "webcall.example.toml with every setting on does not parse: {:?}",
        parsed.err()
    );
}

#[test]
fn the_readme_table_names_no_flag_that_does_not_exist() {
    let flags = setting_flags();
    for line in README.lines().filter(|l| l.starts_with("| `--")) {
        let Some(rest) = line.strip_prefix("| `--") else {
            continue;
        };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '-')
            .collect();
        assert!(
            flags.contains(&name) || name == "config",
            "README names --{name}, which webcall does not take"
        );
    }
}

#[test]
fn defaults_apply_without_flags() {
    let config = Config::from_cli(Cli::default()).unwrap();
    assert_eq!(config.http.port(), 8080);
    assert_eq!(config.https.port(), 8443);
    assert_eq!(config.media_port, MEDIA_PORT_DEFAULT);
    assert_eq!(config.room_capacity, ROOM_CAPACITY_DEFAULT);
    assert_eq!(config.peer_timeout, PEER_TIMEOUT_DEFAULT);
    assert_eq!(config.session_timeout, SESSION_TIMEOUT_DEFAULT);
    assert!(config.workers >= 1);
}

fn write_config(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("webcall-config-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("c.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn file_values_apply_and_flags_win() {
    let path = write_config(
        "apply",
        "media_port = 40000\nroom_capacity = 3\nio = \"mmsg\"\nworkers = 2\npeer_timeout = \"2m\"\nsession_timeout = 9\n",
    );
    let cli = Cli {
        config: Some(path),
        workers: Some(1),
        session_timeout: Some("1m".parse().unwrap()),
        ..Cli::default()
    };
    let config = Config::from_cli(cli).unwrap();
    assert_eq!(config.media_port, 40000);
    assert_eq!(config.room_capacity, 3);
    assert_eq!(config.workers, 1);
    assert_eq!(config.io, IoChoice::Mmsg);
    assert_eq!(config.peer_timeout, Duration::from_secs(120));
    assert_eq!(config.session_timeout, Duration::from_secs(60));
}

#[test]
fn durations_parse_from_the_command_line() {
    let cli = Cli::try_parse_from(["webcall", "--peer-timeout", "90s", "--session-timeout", "5m"]).unwrap();
    let config = Config::from_cli(cli).unwrap();
    assert_eq!(config.peer_timeout, Duration::from_secs(90));
    assert_eq!(config.session_timeout, Duration::from_secs(300));
    assert!(Cli::try_parse_from(["webcall", "--peer-timeout", "soon"]).is_err());
}

#[test]
fn an_unannounceable_media_ip_is_refused() {
    let cli = Cli {
        media_ip: Some("0.0.0.0".parse().unwrap()),
        ..Cli::default()
    };
    assert!(matches!(
        Config::from_cli(cli),
        Err(ConfigError::Invalid {
            field: "media-ip",
            ..
        })
    ));
}

#[test]
fn unknown_file_keys_are_refused() {
    let path = write_config("bad", "no_such_key = 1\n");
    let cli = Cli {
        config: Some(path),
        ..Cli::default()
    };
    assert!(matches!(Config::from_cli(cli), Err(ConfigError::Parse { .. })));
}

#[test]
fn io_choice_parses_and_displays() {
    for choice in [IoChoice::Auto, IoChoice::Uring, IoChoice::Mmsg] {
        assert_eq!(choice.to_string().parse::<IoChoice>(), Ok(choice));
    }
    assert_eq!("io_uring".parse::<IoChoice>(), Ok(IoChoice::Uring));
    assert!("epoll".parse::<IoChoice>().is_err());
}

#[test]
fn recording_settings_take_wcs_names_and_defaults() {
    let defaults = Config::from_cli(Cli::default()).unwrap();
    assert_eq!(defaults.record_dir, defaults.data_dir.join("records"));
    assert!(!defaults.record_room_timeline && !defaults.record_room_composite);
    assert_eq!(defaults.record_min_free_bytes, RECORD_MIN_FREE_BYTES_DEFAULT);
    assert_eq!(defaults.record_resume_window, RECORD_RESUME_WINDOW_DEFAULT);
    assert_eq!(defaults.record_name_template, RECORD_NAME_TEMPLATE_DEFAULT);
    assert_eq!(defaults.admin_key, None);
    // WCS's own name for the room timeline.
    let path = write_config(
        "wcs-name",
        "enable_empty_shift_writer = true\nrecord_resume_window = \"3s\"\n",
    );
    let config = Config::from_cli(Cli {
        config: Some(path),
        ..Cli::default()
    })
    .unwrap();
    assert!(config.record_room_timeline);
    assert_eq!(config.record_resume_window, Duration::from_secs(3));
}

#[test]
fn an_admin_key_is_read_and_a_short_one_refused() {
    let good = write_config("key-good", "  0123456789abcdef-key  \nignored\n");
    let config = Config::from_cli(Cli {
        admin_key_file: Some(good),
        ..Cli::default()
    })
    .unwrap();
    assert_eq!(config.admin_key.as_deref(), Some("0123456789abcdef-key"));
    let short = write_config("key-short", "secret\n");
    let refused = Config::from_cli(Cli {
        admin_key_file: Some(short),
        ..Cli::default()
    });
    assert!(matches!(
        refused,
        Err(ConfigError::Invalid {
            field: "admin-key-file",
            ..
        })
    ));
}
