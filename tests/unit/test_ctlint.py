"""tools.ctlint: what `ct lint` runs, against fixture charts in real temporary git repositories.

The repositories use this project's own chart_schema.yaml and lintconf.yaml, so the tests also prove
those configurations accept a conforming chart and reject the mistakes below.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.freshclone import fresh_clone
from tools import ctlint
from tools.ctlint import semver

ROOT = Path(__file__).resolve().parents[2]
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}

TEMPLATE = """\
{{- if .Values.bad }}{{ .Values.bad.reason }}{{ end }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-{{ .Chart.Name }}
data:
  replicas: {{ .Values.replicas | quote }}
"""


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV}).stdout


def write_chart(repo: Path, name: str, version: str = "0.1.0", extra_meta: str = "kubeVersion: \">=1.29.0-0\"\n",
                ci: dict[str, str] | None = None) -> Path:
    chart = repo / "charts" / name
    (chart / "templates").mkdir(parents=True, exist_ok=True)
    (chart / "Chart.yaml").write_text(
        f"apiVersion: v2\nname: {name}\ndescription: fixture chart {name}\ntype: application\n"
        f"version: {version}\n{extra_meta}"
    )
    (chart / "values.yaml").write_text("# -- Replicas.\nreplicas: 1\n# -- Fail on purpose when set.\nbad: false\n")
    (chart / "templates" / "configmap.yaml").write_text(TEMPLATE)
    for fname, text in (ci or {"default-values.yaml": "replicas: 2\n"}).items():
        (chart / "ci").mkdir(exist_ok=True)
        (chart / "ci" / fname).write_text(text)
    return chart


def set_version(chart: Path, version: str) -> None:
    text = (chart / "Chart.yaml").read_text()
    lines = [f"version: {version}" if ln.startswith("version:") else ln for ln in text.splitlines()]
    (chart / "Chart.yaml").write_text("\n".join(lines) + "\n")


CT_YAML = """\
target-branch: main
chart-dirs:
  - charts
check-version-increment: true
validate-maintainers: false
lint-conf: lintconf.yaml
chart-yaml-schema: chart_schema.yaml
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository on main with two conforming charts, alpha and beta, and our ct configs."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    shutil.copy(ROOT / "lintconf.yaml", repo)
    shutil.copy(ROOT / "chart_schema.yaml", repo)
    (repo / "ct.yaml").write_text(CT_YAML)
    write_chart(repo, "alpha")
    write_chart(repo, "beta")
    commit(repo, "initial")
    return repo


def commit(repo: Path, msg: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", msg)


def run(repo: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = ctlint.main(["--config", str(repo / "ct.yaml"), *args])
    out, err = capsys.readouterr()
    return code, out, err


def feature_branch(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "feature")


# --- chart selection -------------------------------------------------------------------------------

def test_on_the_target_branch_itself_every_chart_is_linted(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(repo, capsys)
    assert code == 0, err
    assert "linting every chart" in out
    assert "linting charts/alpha" in out and "linting charts/beta" in out


def test_only_charts_changed_since_the_merge_base_are_linted(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # beta is broken on main already; a branch that only touches alpha must not be blamed for it.
    (repo / "charts/beta/ci/default-values.yaml").write_text("bad: on-main\n")
    commit(repo, "beta broken on main")
    feature_branch(repo)
    (repo / "charts/alpha/values.yaml").write_text("# -- Replicas.\nreplicas: 3\n# -- Fail.\nbad: false\n")
    set_version(repo / "charts/alpha", "0.2.0")
    commit(repo, "alpha: 3 replicas")
    code, out, err = run(repo, capsys)
    assert code == 0, err
    assert "linting charts/alpha" in out
    assert "charts/beta" not in out + err


def test_changed_chart_without_a_version_bump_fails(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    feature_branch(repo)
    (repo / "charts/alpha/templates/configmap.yaml").write_text(TEMPLATE + "  extra: \"1\"\n")
    commit(repo, "alpha: change without bump")
    code, _, err = run(repo, capsys)
    assert code == 1
    assert ("charts/alpha/Chart.yaml: [version-increment] version 0.1.0 is not greater than 0.1.0 at the merge base"
            in err)
    assert len(err.strip().splitlines()) == 1


def test_uncommitted_changes_count_as_changes(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    feature_branch(repo)
    (repo / "charts/beta/values.yaml").write_text("# -- Replicas.\nreplicas: 5\n# -- Fail.\nbad: false\n")
    code, out, err = run(repo, capsys)
    assert code == 1
    assert "linting charts/beta" in out and "charts/alpha" not in out
    assert "charts/beta/Chart.yaml: [version-increment]" in err


def test_version_lower_than_the_merge_base_fails_and_a_new_chart_needs_no_bump(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    feature_branch(repo)
    set_version(repo / "charts/alpha", "0.0.9")
    write_chart(repo, "gamma")
    commit(repo, "alpha downgraded, gamma added")
    code, out, err = run(repo, capsys)
    assert code == 1
    assert "charts/alpha/Chart.yaml: [version-increment] version 0.0.9 is not greater than 0.1.0" in err
    assert "linting charts/gamma" in out and "charts/gamma" not in err


def test_merge_base_is_taken_from_the_remote_target_branch_first(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True, env={**os.environ, **GIT_ENV})
    git(clone, "checkout", "-q", "-b", "feature")
    git(clone, "branch", "-q", "-D", "main")  # only origin/main is left, as in a CI checkout of a PR
    set_version(clone / "charts/beta", "0.1.1")
    (clone / "charts/beta/values.yaml").write_text("# -- Replicas.\nreplicas: 2\n# -- Fail.\nbad: false\n")
    commit(clone, "beta bumped")
    code, out, err = run(clone, capsys)
    assert code == 0, err
    assert "merge base with main" in out and "linting charts/beta" in out and "charts/alpha" not in out


def test_all_lints_every_chart_without_version_checks(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    feature_branch(repo)
    (repo / "charts/alpha/values.yaml").write_text("# -- Replicas.\nreplicas: 4\n# -- Fail.\nbad: false\n")
    commit(repo, "alpha changed without bump")
    code, out, err = run(repo, capsys, "--all")
    assert code == 0, err
    assert "linting charts/alpha" in out and "linting charts/beta" in out


def test_no_target_branch_at_all_falls_back_to_every_chart(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "trunk"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "trunk")
    shutil.copy(ROOT / "lintconf.yaml", repo)
    shutil.copy(ROOT / "chart_schema.yaml", repo)
    (repo / "ct.yaml").write_text(CT_YAML)
    write_chart(repo, "alpha")
    commit(repo, "initial")
    code, out, err = run(repo, capsys)
    assert code == 0, err
    assert "no merge base with origin/main or main" in out and "linting charts/alpha" in out


# --- the checks ----------------------------------------------------------------------------------------

def test_chart_yaml_against_our_schema(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chart = repo / "charts/alpha"
    (chart / "Chart.yaml").write_text("apiVersion: v1\nname: alpha\nversion: 0.1.0\ndescription: d\nowner: me\n")
    code, _, err = run(repo, capsys, "--charts", "charts/alpha")
    assert code == 1
    lines = [ln for ln in err.splitlines() if "[chart-schema]" in ln]
    assert any("apiVersion" in ln and "v2" in ln for ln in lines), err
    assert any("kubeVersion" in ln and "Required field missing" in ln for ln in lines), err
    assert any("owner" in ln and "Unexpected element" in ln for ln in lines), err
    assert all(ln.startswith("charts/alpha/Chart.yaml: [chart-schema]") for ln in lines)


def test_non_semver_version_is_a_schema_error(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    set_version(repo / "charts/alpha", "1.0")
    code, _, err = run(repo, capsys, "--charts", "charts/alpha")
    assert code == 1
    assert "charts/alpha/Chart.yaml: [chart-schema] version: '1.0' is not a semver 2" in err


def test_yamllint_errors_in_ci_values_files_fail_with_line_and_rule(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "charts/alpha/ci/dup-values.yaml").write_text("replicas: 1\nreplicas: 2\n")
    code, _, err = run(repo, capsys, "--charts", "charts/alpha")
    assert code == 1
    assert "charts/alpha/ci/dup-values.yaml:2:1: [yamllint] duplication of key \"replicas\" in mapping (key-duplicates)" in err


def test_yamllint_warnings_do_not_fail(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "charts/alpha/values.yaml").write_text(
        "# -- Replicas.\nreplicas: 1\n# -- Fail.\nbad: false\n# -- Long.\nlong: " + "x" * 150 + "\n")
    code, out, err = run(repo, capsys, "--charts", "charts/alpha")
    assert code == 0, err
    assert "warning: charts/alpha/values.yaml:6:141: line too long" in out


def test_helm_lint_runs_with_every_ci_values_file(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_chart(repo, "alpha", ci={"good-values.yaml": "replicas: 2\n", "broken-values.yaml": "bad: scenario\n"})
    code, _, err = run(repo, capsys, "--charts", "charts/alpha")
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("charts/alpha/ci/broken-values.yaml: [helm-lint]")
    assert "can't evaluate field reason" in lines[0]


def test_ci_files_not_named_values_are_not_scenarios(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "charts/alpha/ci/notes.yaml").write_text("bad: ignored\n")
    code, _, err = run(repo, capsys, "--charts", "charts/alpha")
    assert code == 0, err


def test_broken_local_dependency_is_reported(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_chart(repo, "alpha", extra_meta='kubeVersion: ">=1.29.0-0"\ndependencies:\n  - name: missing\n'
                '    version: 0.1.0\n    repository: file://../missing\n')
    code, _, err = run(repo, capsys, "--charts", "charts/alpha")
    assert code == 1
    assert "charts/alpha/Chart.yaml: [dependencies]" in err


def test_additional_commands_run_per_chart_with_path_and_once_without(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = repo / "commands.log"
    (repo / "ct.yaml").write_text(CT_YAML + (
        "additional-commands:\n"
        f"  - python -c \"import sys; open('{log}', 'a').write('per ' + sys.argv[1] + chr(10))\" {{{{ .Path }}}}\n"
        f"  - python -c \"open('{log}', 'a').write('once' + chr(10))\"\n"
        "  - python -c \"raise SystemExit(3)\"\n"
    ))
    code, _, err = run(repo, capsys, "--all")
    assert code == 1
    assert sorted(log.read_text().splitlines()) == ["once", "per charts/alpha", "per charts/beta"]
    assert 'ct.yaml additional-commands (all charts): [additional-command] `python -c "raise SystemExit(3)"` '\
           "failed with exit code 3" in err


# --- configuration errors: exit 2, one line ---------------------------------------------------------

@pytest.mark.parametrize(
    ("ct_yaml", "expected"),
    [
        (CT_YAML + "chart-dir: charts\n", "unknown key 'chart-dir'"),
        (CT_YAML + "check-version-increment: maybe\n", "'check-version-increment' must be true or false"),
        (CT_YAML.replace("chart_schema.yaml", "nope.yaml"), "'chart-yaml-schema' names nope.yaml, which does not exist"),
        ("chart-dirs: [charts\n", "not valid YAML"),
    ],
    ids=["typo", "not-bool", "missing-schema", "bad-yaml"],
)
def test_configuration_errors_exit_2_with_one_line(
    repo: Path, capsys: pytest.CaptureFixture[str], ct_yaml: str, expected: str
) -> None:
    (repo / "ct.yaml").write_text(ct_yaml)
    code, _, err = run(repo, capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and expected in err


def test_invalid_lintconf_is_a_configuration_error(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "lintconf.yaml").write_text("rules:\n  no-such-rule: enable\n")
    code, _, err = run(repo, capsys)
    assert code == 2 and "lintconf.yaml: invalid yamllint configuration" in err


def test_outside_a_git_repository_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "ct.yaml").write_text(CT_YAML)
    code = ctlint.main(["--config", str(tmp_path / "ct.yaml")])
    _, err = capsys.readouterr()
    assert code == 2 and "is not a git repository" in err


def test_unknown_chart_given_exits_2(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(repo, capsys, "--charts", "charts/nope")
    assert code == 2 and "charts/nope is not a chart directory" in err


# --- semver precedence ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("lower", "higher"),
    [("0.9.0", "0.10.0"), ("1.0.0-rc.1", "1.0.0"), ("1.0.0-rc.2", "1.0.0-rc.10"), ("1.0.0-alpha", "1.0.0-alpha.1"),
     ("1.0.0-1", "1.0.0-alpha"), ("1.9.9", "2.0.0")],
)
def test_semver_precedence(lower: str, higher: str) -> None:
    assert semver.parse(lower) < semver.parse(higher)
    assert not semver.parse(higher) <= semver.parse(lower)


def test_build_metadata_does_not_count_as_an_increment() -> None:
    assert not semver.parse("1.0.0+build.2") > semver.parse("1.0.0")


@pytest.mark.parametrize("bad", ["1.0", "01.0.0", "1.0.0-", "latest"])
def test_non_semver_is_rejected(bad: str) -> None:
    with pytest.raises(semver.SemverError):
        semver.parse(bad)


# --- local dependencies held as symlinks ----------------------------------------------------------

def _link_beta_into_alpha(repo: Path, helmignore: bool = True) -> Path:
    alpha = write_chart(repo, "alpha", extra_meta='kubeVersion: ">=1.29.0-0"\ndependencies:\n  - name: beta\n'
                        '    version: 0.1.0\n    repository: file://../beta\n')
    (alpha / "charts").mkdir(exist_ok=True)
    (alpha / "charts" / "beta").symlink_to("../../beta")
    if helmignore:
        (alpha / ".helmignore").write_text("charts/*.tgz\n")
    return alpha


def test_a_symlinked_local_dependency_lints_clean_without_building_anything(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    alpha = _link_beta_into_alpha(repo)
    code, _, err = run(repo, capsys, "--charts", "charts/alpha")
    assert code == 0, err
    assert not list((alpha / "charts").glob("*.tgz"))


def test_a_package_helm_could_load_next_to_a_symlinked_dependency_is_a_finding(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    alpha = _link_beta_into_alpha(repo, helmignore=False)
    subprocess.run([str(ROOT / ".venv/bin/helm"), "dependency", "build", str(alpha)], check=True,
                   capture_output=True)  # what ct itself runs first
    code, _, err = run(repo, capsys, "--charts", "charts/alpha")
    assert code == 1
    assert "charts/alpha/Chart.yaml: [dependencies]" in err and "beta-0.1.0.tgz" in err and ".helmignore" in err


def test_adding_a_dependency_link_changes_the_chart_so_its_version_must_grow(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    feature_branch(repo)
    _link_beta_into_alpha(repo)
    commit(repo, "alpha bundles beta")
    code, out, err = run(repo, capsys)
    assert code == 1 and "linting charts/alpha" in out and "linting charts/beta" not in out
    assert "charts/alpha/Chart.yaml: [version-increment]" in err


def test_ct_lint_of_our_charts_passes_on_a_fresh_clone_after_cts_own_dependency_build(tmp_path: Path) -> None:
    clone = fresh_clone(tmp_path)
    helm_bin = str(ROOT / ".venv/bin/helm")
    subprocess.run([helm_bin, "dependency", "build", "charts/nova"], cwd=clone, check=True, capture_output=True)
    proc = subprocess.run([sys.executable, "-m", "tools.ctlint", "--all"], cwd=clone, capture_output=True,
                          text=True, check=False, env={**os.environ, "HELM": helm_bin})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"ctlint: [3-9] chart\(s\) linted, 0 failed", proc.stdout), proc.stdout
