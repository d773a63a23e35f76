"""Screenshots of the console's main pages at laptop and phone sizes, for the docs.

    .venv/bin/python bench/screenshots.py [--out docs/screenshots] [--budget-kb 150]

The console is shown the way tests/browser/test_layout_browser.py fills and walks it:
pytest-django's live server on a fresh test database, Debian's Chromium driven by
Playwright, a maker's connector with devices in every state, an import with errors,
a certificate authority, a trust anchor, an app, and a user's securely registered
device. With GATEHOUSE_SCREENSHOTS set, that walk keeps a PNG of each main page at
1280×800 and 390×844; this script runs it, checks each file against the size budget
and copies them into --out (docs/screenshots/ by default, linked from README.md).
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
LAYOUT_TESTS = "tests/browser/test_layout_browser.py"
WALKS = "admins_screen or users_own_pages"


def take(folder: Path) -> None:
    """The layout walks, keeping their screenshots in `folder`."""
    env = {
        **os.environ,
        "GATEHOUSE_SCREENSHOTS": str(folder),
        # No Chromium is a failure here, not a skipped test.
        "GATEHOUSE_REQUIRE_BROWSER": "1",
    }
    command = [sys.executable, "-m", "pytest", LAYOUT_TESTS, "-q", "-k", WALKS]
    done = subprocess.run(command, cwd=BASE_DIR, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the layout walks failed (exit {done.returncode}): no screenshots kept")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=BASE_DIR / "docs" / "screenshots")
    parser.add_argument("--budget-kb", type=int, default=150)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gatehouse-screenshots-") as folder:
        take(Path(folder))
        shots = sorted(Path(folder).glob("*.png"))
        if not shots:
            raise SystemExit("the walks kept no screenshot")
        options.out.mkdir(parents=True, exist_ok=True)
        for stale in options.out.glob("*.png"):
            stale.unlink()
        over = []
        for shot in shots:
            size_kb = shot.stat().st_size / 1024
            shutil.copyfile(shot, options.out / shot.name)
            flag = ""
            if size_kb > options.budget_kb:
                over.append(shot.name)
                flag = f"  over the {options.budget_kb} KB budget"
            print(f"{shot.name:28} {size_kb:6.0f} KB{flag}")
    print(f"{len(shots)} screenshots in {options.out}")
    if over:
        raise SystemExit(f"over budget: {', '.join(over)}")


if __name__ == "__main__":
    main()
