"""Bad config values through every source, and random YAML documents.

Every setting of every section dataclass (``SECTIONS``), every top-level setting
(``TOP_SETTINGS``), every host-entry key (``HOST_ENTRY_KEYS``) and the node lists is enumerated
from ``ringrift_cluster.config``, so a new setting is covered without touching this file. Each gets
bad values (wrong type, negative or zero, NaN/inf, huge, empty) through the YAML, through its
environment variable (``ENV_VARS``), through the ``overrides`` of ``load_config`` and, for the
settings the CLI exposes, through the real argument parser. The answer must be a ``ConfigError``
whose ``.key`` names what was set (the YAML key, the variable, the flag), never another exception.

Every config tried here goes through both ``check-config`` (``load_config``) and what ``run`` does
before it serves (``load_config``, then ``ClusterNode``: every backend built), and the two must
agree: the same config, or the same ``ConfigError`` (``agree``).

Then hypothesis writes random YAML documents (and environments): ``load_config`` either returns
a config or raises ``ConfigError``.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from pathlib import Path
from typing import Any, Callable, get_type_hints

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ringrift_cluster import cli
from ringrift_cluster.config import (
    ENV_FILE_VARS, ENV_VARS, HOST_ENTRY_KEYS, HOST_FILE_KEYS, SECTION, SECTIONS, TOP_SETTINGS,
    ClusterConfig, load_config,
)
from ringrift_cluster.config.sources import cli_label  # the flag a setting is given by (one table)
from ringrift_cluster.errors import ConfigError
from ringrift_cluster.node import ClusterNode

# -- What there is to set ------------------------------------------------------------------------

SETTINGS: dict[str, Any] = {
    **{f"{name}.{f.name}": get_type_hints(cls)[f.name] for name, cls in SECTIONS.items() for f in dataclasses.fields(cls)},
    **TOP_SETTINGS,
}
NODE_LISTS = {"p2p_voters": "voters", "raft_members": "raft_members", "coordinator_nodes": "coordinator_nodes"}
ENV_BY_PATH: dict[str, list[str]] = {}
for _name, _path in ENV_VARS.items():
    ENV_BY_PATH.setdefault(_path, []).append(_name)
CLI_PATHS = list(cli._overrides(cli._parser().parse_args(["run"])))  # what `run` and `check-config` take

NAN, INF = float("nan"), float("inf")
HUGE_INT = 10 ** 30
HUGE_FLOAT = 1e300


def is_duration(path: str) -> bool:
    return path.endswith("_s")


def bad_values(path: str, kind: Any) -> list[tuple[str, Any]]:
    """(category, value) pairs no setting of this kind may take."""
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return [("type", "gossip"), ("type", 5), ("type", [kind.__members__[next(iter(kind.__members__))].value]),
                ("type", {"a": 1}), ("type", True), ("empty", ""), ("empty", None)]
    if kind is bool:
        return [("type", "maybe"), ("type", 2), ("type", [True]), ("type", {"a": 1}), ("type", 1.5),
                ("empty", ""), ("empty", None)]
    if kind is int:
        out = [("type", "abc"), ("type", [1]), ("type", {"a": 1}), ("type", True), ("type", 1.5), ("type", "1.5"),
               ("negative", -1), ("huge", HUGE_INT), ("empty", ""), ("empty", None), ("nan", "nan")]
        if path.endswith("port"):
            out += [("negative", 0), ("huge", 65536)]
        return out
    if kind is float:
        out = [("type", "abc"), ("type", [1.0]), ("type", {"a": 1}), ("type", True), ("negative", -1.0),
               ("nan", NAN), ("nan", INF), ("nan", -INF), ("nan", "nan"), ("nan", "inf"), ("huge", HUGE_FLOAT),
               ("empty", ""), ("empty", None)]
        if is_duration(path):
            out.append(("negative", 0.0))
        return out
    if kind is str:
        out = [("type", [1]), ("type", {"a": 1}), ("type", True), ("empty", None)]
        if path in MUST_NOT_BE_EMPTY:
            out.append(("empty", ""))
        if path in CHOICES:
            out.append(("choice", "no-such-choice"))
        if path == "node_id":
            out += [("huge", "x" * 100_000), ("type", "10.0.0.1:8770"), ("type", "UPPER")]
        return out
    if kind is tuple:
        return [("type", 5), ("type", {"a": 1}), ("type", [1]), ("type", True), ("type", [[1]])]
    raise AssertionError(f"no bad values for {path}: {kind!r}")


# Strings for which "" is not a value (the others mean "not set" or "the default": bind hosts,
# passwords and tokens, host-entry fields that fall back to the next one).
MUST_NOT_BE_EMPTY = {"node_id", "preset", "log_level", "log_format", "swim.transport", "data_dir"}
CHOICES = {"preset", "log_level", "log_format", "swim.transport"}  # strings from a fixed set

# Bad values still accepted, by design (an entry says why; none today: every section is bounded).
KNOWN_ACCEPTED: dict[tuple[str, str, str], str] = {}


# -- Resolving ------------------------------------------------------------------------------------


def check_config(path: Path, env: dict[str, str], overrides: dict[str, Any] | None) -> ClusterConfig:
    """What ``ringrift-cluster check-config`` validates."""
    return load_config(path, env=env, overrides=overrides)


def run_path(path: Path, env: dict[str, str], overrides: dict[str, Any] | None) -> ClusterConfig:
    """What ``ringrift-cluster run`` validates before it serves: the config, then every backend
    the plan names, built (nothing binds or starts)."""
    config = load_config(path, env=env, overrides=overrides)
    ClusterNode(config)
    return config


def outcome(step: Callable[..., ClusterConfig], *args: Any) -> ClusterConfig | BaseException:
    try:
        return step(*args)
    except Exception as e:  # noqa: BLE001 - the point is to see which
        return e


def agree(path: Path, env: dict[str, str], overrides: dict[str, Any] | None = None) -> ClusterConfig | BaseException:
    """check-config's verdict on a config, after asserting that run's is the same."""
    checked = outcome(check_config, path, env, overrides)
    ran = outcome(run_path, path, env, overrides)
    if isinstance(checked, ClusterConfig):
        assert ran == checked, f"check-config accepts what run refuses: {ran!r}"
    else:
        assert type(ran) is type(checked) and str(ran) == str(checked), \
            f"check-config says {checked!r}, run says {ran!r}"
    return checked


@pytest.fixture
def resolve(tmp_path: Path) -> Callable[..., Any]:
    """check-config and run on one config; returns the config or the exception (never raises)."""
    path = tmp_path / "cluster.yaml"

    def run(document: dict[str, Any] | None = None, env: dict[str, str] | None = None,
            overrides: dict[str, Any] | None = None) -> ClusterConfig | BaseException:
        path.write_text(yaml.safe_dump(document if document is not None else base_document(), allow_unicode=True))
        return agree(path, env if env is not None else {"RINGRIFT_NODE_ID": "a"}, overrides)

    return run


def base_document(**ours: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "hosts": {"a": {"p2p_host": "127.0.0.1", "p2p_port": 9000, "swim_port": 9100, "raft_port": 9200},
                  "b": {"p2p_host": "127.0.0.1", "p2p_port": 9001, "swim_port": 9101, "raft_port": 9201}},
    }
    if ours:
        document[SECTION] = ours
    return document


def yaml_setting(path: str, value: Any) -> dict[str, Any]:
    section, _, name = path.rpartition(".")
    return base_document(**({section: {name: value}} if section else {name: value}))


def names_the_key(error: ConfigError, label: str, path: str) -> bool:
    """``.key`` is the label of what was set; an engine check names the YAML key; a cross-field
    rule may name the other field, saying which value of ours it compared with."""
    canonical = f"{SECTION}.{path}"
    if error.key in (label, canonical) or error.key.startswith(label + "["):
        return True
    section = path.rpartition(".")[0]
    return bool(section) and error.key.startswith(f"{SECTION}.{section}.") and path in error.expected


def verdict(result: Any, label: str, path: str, source: str, category: str, value: Any) -> str | None:
    """None when fine; else what went wrong."""
    known = (KNOWN_ACCEPTED.get((source, path, category)) or KNOWN_ACCEPTED.get(("*", path, category)))
    if isinstance(result, ConfigError):
        if names_the_key(result, label, path) or known:
            return None
        return f"{source} {path}={value!r:.40} ({category}): ConfigError names {result.key!r}, not {label!r}: {result}"
    if isinstance(result, BaseException):
        return f"{source} {path}={value!r:.40} ({category}): {type(result).__name__}: {result}"[:300]
    if known:
        return None
    return f"{source} {path}={value!r:.40} ({category}): accepted"


def collect(problems: list[str]) -> None:
    assert not problems, "\n".join(problems)


# -- Every setting, every source ---------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(SETTINGS))
def test_bad_values_in_yaml(resolve: Callable[..., Any], path: str) -> None:
    env = {} if path == "node_id" else {"RINGRIFT_NODE_ID": "a"}
    problems = []
    for category, value in bad_values(path, SETTINGS[path]):
        result = resolve(yaml_setting(path, value), env=env)
        problems.append(verdict(result, f"{SECTION}.{path}", path, "yaml", category, value))
    collect([p for p in problems if p])


def env_text(value: Any) -> str | None:
    """How a bad value looks in an environment variable (None: it cannot)."""
    if isinstance(value, (dict, list)) or value is None or value == "":
        return None  # an empty variable means "not set", by design
    if isinstance(value, bool):
        return None if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


@pytest.mark.parametrize("name, path", sorted((n, p) for n, p in ENV_VARS.items() if p in SETTINGS or p == "voters"))
def test_bad_values_in_env(resolve: Callable[..., Any], name: str, path: str) -> None:
    kind = SETTINGS.get(path, tuple)
    if kind is tuple:  # a comma-separated list of node ids
        texts = [("type", t) for t in ("5", "a,zz", "a,a", "A", "a:1", "a,,b:2")]
    else:
        texts = [(category, env_text(value)) for category, value in bad_values(path, kind)]
        if kind is str and path != "node_id":  # every variable is a string: only values can be wrong
            texts = [(category, text) for category, text in texts if category != "type"]
    problems = []
    for category, text in texts:
        if text is None:
            continue
        env = {name: text} if path == "node_id" else {"RINGRIFT_NODE_ID": "a", name: text}
        problems.append(verdict(resolve(env=env), name, path, "env", category, text))
    collect([p for p in problems if p])


@pytest.mark.parametrize("path", sorted(SETTINGS))
def test_bad_values_as_overrides(resolve: Callable[..., Any], path: str) -> None:
    env = {} if path == "node_id" else {"RINGRIFT_NODE_ID": "a"}
    problems = []
    for category, value in bad_values(path, SETTINGS[path]):
        if value is None:
            continue  # an override of None means "not given"
        result = resolve(env=env, overrides={path: value})
        problems.append(verdict(result, cli_label(path), path, "overrides", category, value))
    collect([p for p in problems if p])


@pytest.mark.parametrize("path", CLI_PATHS)
def test_bad_values_on_the_command_line(resolve: Callable[..., Any], path: str) -> None:
    """Through the real argument parser (which already refuses a non-integer --port)."""
    flag = cli_label(path)
    problems = []
    for category, value in bad_values(path, SETTINGS[path]):
        if isinstance(value, (dict, list, bool)) or value is None or (SETTINGS[path] is str and value == ""
                                                                     and path not in MUST_NOT_BE_EMPTY):
            continue  # argv holds strings
        argv = ["run", flag, str(value)] + ([] if path == "node_id" else ["--node-id", "a"])
        try:
            args = cli._parser().parse_args(argv)
        except SystemExit:
            continue  # argparse refused it (--port abc): that is the CLI's own usage error
        result = resolve(env={}, overrides=cli._overrides(args))
        problems.append(verdict(result, flag, path, "cli", category, value))
    collect([p for p in problems if p])


@pytest.mark.parametrize("key", sorted(HOST_ENTRY_KEYS))
def test_bad_values_in_host_entries(resolve: Callable[..., Any], key: str) -> None:
    kind = HOST_ENTRY_KEYS[key]
    path = f"hosts.b.{key}"
    problems = []
    for category, value in bad_values(key, kind):
        if value is None or (kind is str and value == ""):
            continue  # an unset host field falls back to the next one (p2p_host, tailscale_ip, ssh_host)
        document = base_document()
        document["hosts"]["b"][key] = value
        problems.append(verdict(resolve(document), path, path, "yaml", category, value))
    collect([p for p in problems if p])


@pytest.mark.parametrize("key", sorted(NODE_LISTS) + ["preferred_leader"])
def test_bad_node_lists(resolve: Callable[..., Any], key: str) -> None:
    values: list[Any] = [5, {"a": 1}, [1], ["zz"], "zz", ["a:1"], ["A"], [[1]], True, 1.5]
    if key != "preferred_leader":
        values += [["a", "a"], []]
    problems = []
    for value in values:
        document = {**base_document(), key: value}
        result = resolve(document)
        if key != "preferred_leader" and value == []:
            if not isinstance(result, (ClusterConfig, ConfigError)):  # an empty list may mean "the default"
                problems.append(f"{key}=[]: {type(result).__name__}: {result}")
            continue
        problems.append(verdict(result, key, key, "yaml", "type", value))
    collect([p for p in problems if p])


def test_secret_files_that_cannot_be_read(resolve: Callable[..., Any], tmp_path: Path) -> None:
    problems = []
    for name in sorted(ENV_FILE_VARS):
        not_utf8 = tmp_path / "latin1"
        not_utf8.write_bytes(b"caf\xe9\xff")
        for target in (tmp_path / "missing", tmp_path, not_utf8):
            result = resolve(env={"RINGRIFT_NODE_ID": "a", name: str(target)})
            problems.append(verdict(result, name, ENV_FILE_VARS[name], "env", "file", str(target)))
    collect([p for p in problems if p])


@pytest.mark.parametrize("ours, key", [
    ({"membership_mode": "swim", "swim": {"ping_retries": 0}}, "ringrift_cluster.swim.ping_retries"),
    ({"consensus_mode": "raft", "raft": {"connection_timeout_s": 1.5}}, "ringrift_cluster.raft.connection_timeout_s"),
    ({"preset": "local"}, None),
    ({"membership_mode": "hybrid", "consensus_mode": "hybrid", "preset": "local"}, None),
])
def test_check_config_and_run_agree_on_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str], ours: dict[str, Any],
                                                        key: str | None) -> None:
    """The two subcommands themselves, end to end (``run`` stops where it would start serving):
    a config the backends used to refuse only when built is refused by both."""
    from ringrift_cluster import node, observability

    served: list[ClusterNode] = []

    async def serve(n: ClusterNode) -> None:
        served.append(n)

    monkeypatch.setattr(node, "run_until_signalled", serve)
    monkeypatch.setattr(observability, "configure_logging", lambda *a: None)
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(base_document(**ours)))
    argv = ["--config", str(path), "--node-id", "a", "--data-dir", str(tmp_path / "data")]
    codes = [cli.main(["check-config", *argv]), cli.main(["run", *argv])]
    err = capsys.readouterr().err
    if key is None:
        assert codes == [0, 0] and len(served) == 1
    else:
        assert codes == [2, 2] and not served and err.count(key) == 2, err


def test_every_setting_has_bad_values_and_every_variable_is_tested() -> None:
    assert len(SETTINGS) >= 50 and all(bad_values(p, k) for p, k in SETTINGS.items())
    assert {p for p in ENV_VARS.values()} <= set(SETTINGS) | {"voters"}
    assert set(CLI_PATHS) <= set(SETTINGS)


# -- Random documents -----------------------------------------------------------------------------

KNOWN_KEYS = sorted(set(HOST_FILE_KEYS) | set(SECTIONS) | set(TOP_SETTINGS) | set(HOST_ENTRY_KEYS)
                    | {f.name for cls in SECTIONS.values() for f in dataclasses.fields(cls)})
scalars = (st.none() | st.booleans() | st.integers(-(2 ** 70), 2 ** 70) | st.floats() | st.text(max_size=20)
           | st.sampled_from(["a", "b", "zz", "local", "lan", "raft", "hybrid", "swim", "udp", "127.0.0.1", "a:1",
                              "", "nan", "-1", "1e400", "0x10", "yes", "off", "~", "2024-01-01"]))
keys = st.sampled_from(KNOWN_KEYS) | st.sampled_from(["a", "b", "zz", "A"]) | st.text(max_size=12) | st.integers(-3, 3) \
    | st.none() | st.booleans()
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
                      max_leaves=25)


@st.composite
def documents(draw: st.DrawFn) -> Any:
    """Mostly shaped like a host file (hosts a/b, our section with real keys), filled at random:
    most documents get past the shape checks, so the values reach the coercion and the rules."""
    if draw(st.integers(0, 9)) == 0:
        return draw(values)  # anything at all
    document = base_document() if draw(st.booleans()) else {}
    if draw(st.integers(0, 2)) == 0:
        entry_keys = st.sampled_from(sorted(HOST_ENTRY_KEYS)) | (keys if draw(st.integers(0, 3)) == 0 else st.nothing())
        document["hosts"] = draw(st.dictionaries(
            st.sampled_from(["a", "b", "c"]) | (keys if draw(st.integers(0, 3)) == 0 else st.nothing()),
            st.none() | st.dictionaries(entry_keys, values, max_size=6), max_size=4))
    ours: dict[Any, Any] = {}
    for name, cls in draw(st.lists(st.sampled_from(sorted(SECTIONS.items())), max_size=3)):
        fields = st.sampled_from([f.name for f in dataclasses.fields(cls)])
        ours[name] = draw(st.dictionaries(fields, values, max_size=4)) if draw(st.integers(0, 5)) else draw(values)
    ours.update(draw(st.dictionaries(st.sampled_from(sorted(TOP_SETTINGS)), values, max_size=3)))
    if draw(st.integers(0, 5)) == 0:
        ours.update(draw(st.dictionaries(keys, values, max_size=2)))  # unknown (or non-string) keys
    if ours or draw(st.booleans()):
        document[SECTION] = ours if draw(st.integers(0, 5)) else draw(values)
    node_lists = st.sampled_from([k for k in HOST_FILE_KEYS if k not in ("hosts", SECTION)])
    document.update(draw(st.dictionaries(node_lists, values | st.lists(st.sampled_from(["a", "b", "c", "zz"])), max_size=2)))
    if draw(st.integers(0, 5)) == 0:
        document.update(draw(st.dictionaries(keys, values, max_size=2)))  # foreign (or non-string) top-level keys
    return document


RAW_YAML = st.one_of(
    st.text(max_size=300).map(str.encode),
    st.binary(max_size=200),
    st.sampled_from([
        "", "---\n", "...\n", "- a\n", "hosts: [unclosed\n", "hosts: !!python/object:os.system {}\n",
        "a: &x [*x]\n", "hosts: {a: &h {p2p_port: 1}, b: *h}\n", "? [1, 2]\n: x\n", "hosts:\n  a:\n    p2p_port: !!binary aGk=\n",
        "ringrift_cluster: !!set {a, b}\n", "hosts: {a: {p2p_port: 2024-01-01}}\n", "\t- tab\n", "\x00", "\ufeffhosts: {}\n",
        "ringrift_cluster:\n  api:\n    port: 0o17\n", "hosts: {a: {p2p_port: .inf}}\n", "hosts: {a: {gpu_vram_gb: .nan}}\n",
        "lol: &a [x, x, x, x, x, x, x, x, x]\nlol2: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nlol3: &c [*b, *b, *b, *b, *b, *b]\n",
    ]).map(str.encode),
    st.just(b"\xef\xbb\xbfhosts: {}\n"),
)


@settings(parent=settings.get_profile("fuzz"), max_examples=300)
@given(document=documents(), env=st.dictionaries(st.sampled_from(sorted(ENV_VARS)), st.text(max_size=12), max_size=3))
def test_random_documents_load_or_raise_config_error(tmp_path_factory: pytest.TempPathFactory, document: Any,
                                                     env: dict[str, str]) -> None:
    path = tmp_path_factory.getbasetemp() / "random.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True))
    env = {k: v.replace("\x00", "") for k, v in env.items()}  # a real environment holds no NUL
    load_or_config_error(path, env)


@settings(parent=settings.get_profile("fuzz"), max_examples=150)
@given(raw=RAW_YAML)
def test_random_yaml_text_loads_or_raises_config_error(tmp_path_factory: pytest.TempPathFactory, raw: bytes) -> None:
    path = tmp_path_factory.getbasetemp() / "random-text.yaml"
    path.write_bytes(raw)
    load_or_config_error(path, {"RINGRIFT_NODE_ID": "a"})


def load_or_config_error(path: Path, env: dict[str, str]) -> None:
    config = agree(path, env)
    if isinstance(config, ConfigError):
        assert isinstance(config.key, str) and config.key, repr(config)
        str(config)  # the message renders
        return
    if isinstance(config, BaseException):
        raise config
    assert isinstance(config, ClusterConfig) and config.node_id in config.hosts
    for section in SECTIONS:
        for f in dataclasses.fields(SECTIONS[section]):
            value = getattr(getattr(config, section), f.name)
            if isinstance(value, float):
                assert math.isfinite(value), (section, f.name, value)
