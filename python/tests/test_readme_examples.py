"""The README's Python examples: each block marked `<!-- python-example: PATH -->` must be the file PATH verbatim,
and running it from the repository root must print exactly the `text` block that follows it in the README."""

import re
import subprocess
import sys

import pytest

from conftest import REPO

EXAMPLE = re.compile(r"<!-- python-example: (\S+) -->\n```python\n(.*?)\n```\nprints\n```text\n(.*?)\n```", re.S)


def examples():
    found = EXAMPLE.findall((REPO / "README.md").read_text())
    assert len(found) >= 3, "the README's Python section lost its examples"
    return found


@pytest.mark.parametrize("path,code,printed", examples(), ids=lambda x: x if str(x).endswith(".py") else "")
def test_readme_example_prints_what_the_readme_says(path, code, printed):
    assert (REPO / path).read_text().rstrip() == code, f"README block differs from {path}"
    out = subprocess.run([sys.executable, str(REPO / path)], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert out.stdout.rstrip() == printed
