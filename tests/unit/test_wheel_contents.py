"""The product's wheel (and so its image, built from the wheel) holds the product and nothing else."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = {
    "canonical", "domain", "ledger", "connectors", "activities", "workflows", "runs", "ingress",
    "observability", "config",
}  # fmt: skip
TOOLING = {"sandboxes", "devstack", "bench", "tests"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("source")
    # A copy of the tracked tree, so the build neither reads nor writes the checkout's own build files.
    tracked = (
        subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True)
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, tracked):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(out), str(source)],
        check=True,
    )  # fmt: skip
    (built,) = out.glob("ps_sync-*.whl")
    return built


@pytest.fixture(scope="module")
def wheel_names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def _top_level(names: list[str]) -> set[str]:
    return {name.split("/")[0] for name in names if ".dist-info/" not in name}


def test_the_wheel_holds_every_product_package_and_the_entry_modules(wheel_names: list[str]) -> None:
    top = _top_level(wheel_names)
    assert top >= PRODUCT | {"worker.py", "cli.py"}
    assert "ledger/migrations/versions/0001_initial.py" in wheel_names
    assert "ledger/migrations/env.py" in wheel_names
    assert any(name.startswith("ingress/") for name in wheel_names)


def test_the_wheel_holds_no_sandbox_stack_runner_benchmark_or_test_code(wheel_names: list[str]) -> None:
    top = _top_level(wheel_names)
    assert not top & TOOLING, f"development tooling in the wheel: {sorted(top & TOOLING)}"
    assert top <= PRODUCT | {"worker.py", "cli.py"}, f"unexpected in the wheel: {sorted(top - PRODUCT)}"
    for name in wheel_names:
        if name.endswith(".py"):
            assert not re.search(r"\b(sandbox|devstack|bench)\b", name), name


def test_the_console_script_is_the_products_cli(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt")]
        entry_points = archive.read(name).decode()
    assert re.search(r"^pssync = cli:main$", entry_points, flags=re.MULTILINE), entry_points


def test_the_image_installs_only_the_wheel() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    final_stage = dockerfile.rsplit("FROM ", 1)[1]
    copies = re.findall(r"^COPY (.+)$", final_stage, flags=re.MULTILINE)
    assert copies == ["--from=build /wheels /wheels"], copies
