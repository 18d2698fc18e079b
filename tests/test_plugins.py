"""Plugin manager: discovery through entry points, selection, fault isolation and status."""

from __future__ import annotations

import importlib.metadata
import logging
from pathlib import Path
from typing import Any

import pluggy
import pytest

from rlm_core.config import CliOptions, Settings, load_settings
from rlm_core.errors import PluginSelectionError
from rlm_core.hookspecs import EVENT_HOOKS, hookimpl
from rlm_core.plugins import HOOK_NAMES, PluginManager, ambient_plugins, get_plugin_manager
from rlm_core.testing import RecordingPlugin, capture_events
from tests.helpers import sample_module_plugin
from tests.helpers.factories import iteration, run_info, run_result
from tests.helpers.sample_plugins import CountingTracker, RaisingTracker


class FakeDistribution(importlib.metadata.Distribution):
    """A distribution that exists only in memory, with an ``rlm`` entry point section."""

    def __init__(self, name: str, version: str, entry_points: dict[str, str]) -> None:
        self._metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        lines = [f"{key} = {value}" for key, value in entry_points.items()]
        self._entry_points = "[rlm]\n" + "\n".join(lines) + "\n"

    def read_text(self, filename: str) -> str | None:
        return {"METADATA": self._metadata, "entry_points.txt": self._entry_points}.get(filename)

    def locate_file(self, path: Any) -> Path:
        return Path(str(path))


def entry_points(*dists: FakeDistribution) -> list[importlib.metadata.EntryPoint]:
    return [ep for dist in dists for ep in dist.entry_points.select(group="rlm")]


HELPERS = "tests.helpers"
SAMPLES = f"{HELPERS}.sample_plugins"
CORE = FakeDistribution(
    "rlm-core",
    "0.1.0",
    {
        "counting": f"{SAMPLES}:CountingTracker",
        "module": f"{HELPERS}.sample_module_plugin",
    },
)
THIRD = FakeDistribution("rlm-extra", "2.3.4", {"raising": f"{SAMPLES}:RaisingTracker"})
INSTALLED = entry_points(CORE, THIRD)


def manager_for(
    tmp_path: Path,
    cli: CliOptions | None = None,
    env: dict[str, str] | None = None,
    config: str | None = None,
    eps: list[importlib.metadata.EntryPoint] | None = None,
) -> PluginManager:
    if config is not None:
        (tmp_path / "rlm.toml").write_text(config, encoding="utf-8")
    settings = load_settings(cli, env=env or {}, cwd=tmp_path)
    return get_plugin_manager(settings, entry_points=INSTALLED if eps is None else eps)


def states(manager: PluginManager) -> dict[str, tuple[str, str | None]]:
    return {s.name: (s.state, s.reason) for s in manager.statuses()}


def test_hook_names_are_the_contract() -> None:
    assert set(HOOK_NAMES) == {"run_metrics", "run_location", "register_commands", *EVENT_HOOKS}
    assert set(EVENT_HOOKS) == {
        "run_start",
        "setup",
        "iteration",
        "llm_call",
        "tool_call",
        "memory_retrieved",
        "judgment",
        "memory_extracted",
        "metrics",
        "run_end",
    }


def test_discovery_loads_classes_and_modules_with_distribution_and_version(tmp_path: Path) -> None:
    manager = manager_for(tmp_path)
    statuses = {s.name: s for s in manager.statuses()}
    assert set(statuses) == {"counting", "module", "raising"}
    assert statuses["counting"].distribution == "rlm-core"
    assert statuses["counting"].version == "0.1.0"
    assert statuses["raising"].distribution == "rlm-extra"
    assert statuses["counting"].hooks == ("iteration", "run_end", "run_start")
    assert statuses["module"].hooks == ("run_start",)
    assert isinstance(manager.get_plugin("counting"), CountingTracker)
    assert manager.get_plugin("module") is sample_module_plugin


def test_plugin_class_receives_its_config_section(tmp_path: Path) -> None:
    manager = manager_for(tmp_path, config='[plugins.counting]\nlabel = "custom"\nthreshold = 3\n')
    plugin = manager.get_plugin("counting")
    assert isinstance(plugin, CountingTracker)
    assert (plugin.label, plugin.threshold) == ("custom", 3)


def test_by_default_every_available_plugin_is_enabled(tmp_path: Path) -> None:
    assert {state for state, _ in states(manager_for(tmp_path)).values()} == {"enabled"}


def test_cli_allow_list_enables_only_the_named_plugins(tmp_path: Path) -> None:
    result = states(manager_for(tmp_path, cli=CliOptions(trackers=["counting"])))
    assert result["counting"] == ("enabled", None)
    assert result["raising"] == ("disabled", "not in -t/--tracker (command line)")


def test_cli_deny_list_disables_one_plugin(tmp_path: Path) -> None:
    result = states(manager_for(tmp_path, cli=CliOptions(no_tracker=["raising"])))
    assert result["raising"] == ("disabled", "disabled by --no-tracker (command line)")
    assert result["counting"][0] == "enabled"


def test_no_trackers_disables_everything(tmp_path: Path) -> None:
    manager = manager_for(tmp_path, cli=CliOptions(no_trackers=True))
    assert {state for state, _ in states(manager).values()} == {"disabled"}
    assert not manager.hook.wants("run_start")


def test_env_allow_and_deny_lists(tmp_path: Path) -> None:
    result = states(
        manager_for(tmp_path, env={"RLM_TRACKERS": "counting,raising", "RLM_DISABLE": "raising"})
    )
    assert result["counting"][0] == "enabled"
    assert result["raising"] == ("disabled", "disabled by RLM_DISABLE (environment)")
    assert result["module"] == ("disabled", "not in RLM_TRACKERS (environment)")


def test_empty_env_allow_list_means_no_trackers(tmp_path: Path) -> None:
    manager = manager_for(tmp_path, env={"RLM_TRACKERS": ""})
    assert {state for state, _ in states(manager).values()} == {"disabled"}


def test_config_file_selection(tmp_path: Path) -> None:
    result = states(manager_for(tmp_path, config='[rlm]\ndisable = ["module"]\n'))
    assert result["module"][0] == "disabled"
    assert "rlm.disable (config file" in str(result["module"][1])
    assert result["counting"][0] == "enabled"


def test_cli_overrides_env_which_overrides_the_file(tmp_path: Path) -> None:
    config = '[rlm]\ndisable = ["counting", "raising"]\n'
    # the environment re-enables counting over the file's disable
    result = states(manager_for(tmp_path, env={"RLM_TRACKERS": "counting"}, config=config))
    assert result["counting"][0] == "enabled"
    assert result["raising"] == ("disabled", "not in RLM_TRACKERS (environment)")
    # the command line re-enables raising over both
    result = states(
        manager_for(
            tmp_path,
            cli=CliOptions(trackers=["raising"]),
            env={"RLM_TRACKERS": "counting"},
            config=config,
        )
    )
    assert result["raising"][0] == "enabled"
    assert result["counting"] == ("disabled", "not in -t/--tracker (command line)")
    # a deny at a higher layer beats an allow at a lower one
    result = states(
        manager_for(
            tmp_path,
            cli=CliOptions(no_tracker=["counting"]),
            env={"RLM_TRACKERS": "counting"},
            config=config,
        )
    )
    assert result["counting"] == ("disabled", "disabled by --no-tracker (command line)")


@pytest.mark.parametrize(
    ("cli", "env", "where"),
    [
        (CliOptions(trackers=["countng"]), {}, r"-t/--tracker \(command line\)"),
        (CliOptions(no_tracker=["nope"]), {}, r"--no-tracker \(command line\)"),
        (None, {"RLM_DISABLE": "nope"}, r"RLM_DISABLE \(environment\)"),
    ],
)
def test_unknown_name_is_an_error_listing_the_installed_plugins(
    tmp_path: Path, cli: CliOptions | None, env: dict[str, str], where: str
) -> None:
    with pytest.raises(PluginSelectionError, match=where) as error:
        manager_for(tmp_path, cli=cli, env=env)
    assert "installed trackers: counting, module, raising" in str(error.value)


def test_unknown_name_suggests_the_closest_installed_one(tmp_path: Path) -> None:
    with pytest.raises(PluginSelectionError, match="did you mean 'counting'"):
        manager_for(tmp_path, cli=CliOptions(trackers=["countng"]))


def test_plugin_that_fails_to_import_is_unavailable_and_the_others_load(tmp_path: Path) -> None:
    broken = FakeDistribution("rlm-broken", "1.0", {"broken": f"{HELPERS}.sample_broken_import"})
    manager = manager_for(tmp_path, eps=[*INSTALLED, *entry_points(broken)])
    result = states(manager)
    state, reason = result["broken"]
    assert state == "unavailable"
    assert "No module named 'rlm_test_backend_that_is_not_installed'" in str(reason)
    assert (
        "reinstall rlm-broken with its dependencies from its path: pip install PATH/TO/rlm-broken"
        in str(reason)
    )
    assert result["counting"][0] == "enabled"


def test_a_plugin_that_says_how_to_install_its_backend_is_shown_as_is(tmp_path: Path) -> None:
    dist = FakeDistribution("rlm-hinted", "1.0", {"hinted": f"{HELPERS}.sample_hinted_import"})
    state, reason = states(manager_for(tmp_path, eps=entry_points(dist)))["hinted"]
    assert state == "unavailable"
    assert reason == (
        "import failed: ImportError: the hinted tracker needs its backend: "
        "pip install -e ./hinted-backend"
    )


def test_asking_for_an_unavailable_plugin_is_an_error_with_the_reason(tmp_path: Path) -> None:
    broken = FakeDistribution("rlm-broken", "1.0", {"broken": f"{HELPERS}.sample_broken_import"})
    with pytest.raises(
        PluginSelectionError,
        match=r"'broken' was asked for but is unavailable.*"
        r"No module named",
    ):
        manager_for(
            tmp_path, cli=CliOptions(trackers=["broken"]), eps=[*INSTALLED, *entry_points(broken)]
        )


def test_plugin_that_fails_to_construct_is_unavailable(tmp_path: Path) -> None:
    dist = FakeDistribution("x", "1", {"ctor": f"{SAMPLES}:ConstructorFails"})
    state, reason = states(manager_for(tmp_path, eps=[*INSTALLED, *entry_points(dist)]))["ctor"]
    assert state == "unavailable"
    assert reason == "failed to start: OSError: backend directory is read-only"


def test_bad_config_section_makes_the_plugin_unavailable_with_the_reason(tmp_path: Path) -> None:
    result = states(manager_for(tmp_path, config="[plugins.counting]\nlabl = 1\n"))
    assert result["counting"][0] == "unavailable"
    assert "unexpected keyword argument 'labl'" in str(result["counting"][1])
    module_result = states(manager_for(tmp_path, config="[plugins.module]\nx = 1\n"))["module"]
    assert module_result[0] == "unavailable"
    assert "takes no settings" in str(module_result[1])


def test_plugin_implementing_an_unknown_hook_is_unavailable(tmp_path: Path) -> None:
    dist = FakeDistribution("x", "1", {"typo": f"{SAMPLES}:TypoTracker"})
    state, reason = states(manager_for(tmp_path, eps=[*INSTALLED, *entry_points(dist)]))["typo"]
    assert state == "unavailable"
    assert "unknown hook(s) iterations" in str(reason)


def test_duplicate_entry_point_name_keeps_the_first(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    other = FakeDistribution("rlm-other", "9", {"counting": f"{SAMPLES}:RaisingTracker"})
    manager = manager_for(tmp_path, eps=[*INSTALLED, *entry_points(other)])
    assert isinstance(manager.get_plugin("counting"), CountingTracker)
    assert "already provides a plugin of that name" in caplog.text


def test_a_raising_plugin_does_not_stop_the_others_or_the_caller(
    caplog: pytest.LogCaptureFixture,
) -> None:
    manager = PluginManager(max_plugin_errors=100)
    manager.register(RaisingTracker(), "raising")
    recorder = RecordingPlugin()
    manager.register(recorder)
    run = run_info()
    manager.hook.run_start(run=run)
    for index in range(3):
        manager.hook.iteration(run=run, step=iteration(index=index))
    manager.hook.metrics(run=run, values={"x": 1.0}, step=None)
    manager.hook.run_end(run=run, result=run_result())
    assert recorder.hook_names() == ["run_start", *["iteration"] * 3, "metrics", "run_end"]
    health = manager.health("raising")
    assert health.errors_by_hook == {"run_start": 1, "iteration": 3, "metrics": 1, "run_end": 1}
    # logged once per plugin and hook, not once per error
    warnings = [r for r in caplog.records if r.name == "rlm.plugins"]
    assert len(warnings) == 4
    assert "iteration is broken" in caplog.text


def test_plugin_is_blocked_after_max_consecutive_failures() -> None:
    manager = PluginManager(max_plugin_errors=3)
    raising = RaisingTracker()
    manager.register(raising, "raising")
    run = run_info()
    for index in range(10):
        manager.hook.iteration(run=run, step=iteration(index=index))
    (status,) = manager.statuses()
    assert status.state == "blocked"
    assert status.errors == 3
    assert status.reason == (
        "3 consecutive failures, last in iteration: RuntimeError: iteration is broken"
    )


def test_a_success_resets_the_consecutive_failure_count() -> None:
    class Flaky:
        calls = 0

        @hookimpl
        def iteration(self) -> None:
            self.calls += 1
            if self.calls % 2:
                raise ValueError("odd call")

    manager = PluginManager(max_plugin_errors=2)
    manager.register(Flaky(), "flaky")
    for index in range(10):
        manager.hook.iteration(run=run_info(), step=iteration(index=index))
    (status,) = manager.statuses()
    assert (status.state, status.errors) == ("enabled", 5)


def test_strict_mode_re_raises() -> None:
    manager = PluginManager(strict=True)
    manager.register(RaisingTracker(), "raising")
    with pytest.raises(RuntimeError, match="run_start is broken"):
        manager.hook.run_start(run=run_info())


def test_strict_setting_reaches_the_manager(tmp_path: Path) -> None:
    manager = manager_for(tmp_path, config="[rlm]\nstrict = true\n")
    with pytest.raises(RuntimeError, match="run_start is broken"):
        manager.hook.run_start(run=run_info())


def test_hooks_nobody_implements_are_no_ops() -> None:
    manager = PluginManager()
    assert not manager.hook.wants("iteration")
    manager.hook.iteration(run=run_info(), step=iteration())
    plugin = CountingTracker()
    manager.register(plugin, "counting")
    assert manager.hook.wants("iteration")
    assert not manager.hook.wants("tool_call")
    manager.hook.iteration(run=run_info(), step=iteration())
    assert plugin.seen == ["iteration"]
    manager.unregister("counting")
    assert not manager.hook.wants("iteration")


def test_unknown_hook_name_on_the_relay_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no hook named 'iterations'"):
        PluginManager().hook.iterations  # noqa: B018


def test_implementations_may_take_a_subset_of_the_arguments() -> None:
    manager = PluginManager(strict=True)
    plugin = CountingTracker()  # its iteration() takes only ``step``
    manager.register(plugin, "counting")
    manager.hook.iteration(run=run_info(), step=iteration())
    assert plugin.seen == ["iteration"]


def test_hookimpl_options_survive_the_guard() -> None:
    order: list[str] = []

    class Last:
        @hookimpl(trylast=True)
        def run_end(self) -> None:
            order.append("last")

    class First:
        @hookimpl(tryfirst=True)
        def run_end(self) -> None:
            order.append("first")

    manager = PluginManager(strict=True)
    manager.register(Last(), "last")
    manager.register(First(), "first")
    manager.hook.run_end(run=run_info(), result=run_result())
    assert order == ["first", "last"]


def test_wrong_argument_name_is_rejected_at_registration() -> None:
    class Wrong:
        @hookimpl
        def iteration(self, iteration: object) -> None:
            """``iteration`` is not an argument of the hook."""

    with pytest.raises(pluggy.PluginValidationError):
        PluginManager().register(Wrong(), "wrong")


def test_trace_logs_every_hook_call_with_plugin_and_duration(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(env={"RLM_TRACE_PLUGINS": "1"}, cwd=tmp_path)
    manager = get_plugin_manager(settings, entry_points=INSTALLED)
    caplog.set_level(logging.INFO, logger="rlm.trace")
    manager.hook.run_start(run=run_info())
    lines = [r.getMessage() for r in caplog.records if r.name == "rlm.trace"]
    assert any(line.startswith("counting.run_start ") and line.endswith(" us ok") for line in lines)
    assert any(
        line.startswith("raising.run_start ") and "raised RuntimeError" in line for line in lines
    )


def test_extra_plugins_are_always_enabled(tmp_path: Path) -> None:
    recorder = RecordingPlugin()
    manager = get_plugin_manager(
        load_settings(CliOptions(no_trackers=True), env={}, cwd=tmp_path),
        plugins=[recorder],
        entry_points=INSTALLED,
    )
    manager.hook.run_start(run=run_info())
    assert recorder.hook_names() == ["run_start"]


def test_capture_events_sees_managers_created_inside_and_restores_on_exit() -> None:
    with capture_events() as captured:
        manager = get_plugin_manager(Settings(), entry_points=[])
        manager.hook.run_start(run=run_info())
    assert captured.hook_names() == ["run_start"]
    after = get_plugin_manager(Settings(), entry_points=[])
    assert not after.hook.wants("run_start")


def test_capture_events_restores_even_when_the_body_raises() -> None:
    with pytest.raises(KeyError), capture_events():
        raise KeyError("boom")
    assert not get_plugin_manager(Settings(), entry_points=[]).hook.wants("run_start")


def test_ambient_plugins_nest_and_get_unique_names() -> None:
    first, second = RecordingPlugin(), RecordingPlugin()
    with ambient_plugins(first), ambient_plugins(second):
        manager = get_plugin_manager(Settings(), entry_points=[])
    assert [s.name for s in manager.statuses()] == ["recorder", "recorder-2"]
    manager.hook.run_start(run=run_info())
    assert len(first) == len(second) == 1


def test_status_to_dict_is_json_ready(tmp_path: Path) -> None:
    (status, *_) = manager_for(tmp_path).statuses()
    assert status.to_dict() == {
        "name": "counting",
        "distribution": "rlm-core",
        "version": "0.1.0",
        "state": "enabled",
        "reason": None,
        "hooks": ["iteration", "run_end", "run_start"],
        "errors": 0,
    }


def test_implementations_with_default_arguments_are_called_and_isolated() -> None:
    """pluggy passes arguments that have defaults by keyword; the guard must accept them."""
    seen: list[int | None] = []

    class WithDefault:
        @hookimpl
        def metrics(self, run: object, values: object, step: int | None = None) -> None:
            seen.append(step)

    class RaisesWithDefault:
        @hookimpl
        def metrics(self, values: object, step: int | None = None) -> None:
            raise ValueError("bad metrics")

    manager = PluginManager()
    manager.register(WithDefault(), "default")
    manager.register(RaisesWithDefault(), "raises")
    manager.hook.metrics(run=run_info(), values={"x": 1.0}, step=3)
    assert seen == [3]
    assert manager.health("raises").errors_by_hook == {"metrics": 1}
