"""What a report may hold: the report, and nothing of the machine or the run behind it.

:func:`report_problems` reads every executed notebook and HTML report of a merchant's
output folder and lists what a reviewer must never see: a stderr stream (Python warnings
among them), an error output, a warning or traceback printed any other way, or a
filesystem path. The report tests call it on every run they make (demo, CDNOW, the one
customer, one day edge case, the four languages).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

#: An absolute path of this or any machine (POSIX roots, a Windows drive, a home folder).
PATH = re.compile(r"(?<![\w.:/])/(?:tmp|home|root|work|usr|var|opt|etc|mnt|srv|private|Users"
                  r"|Volumes)/|\b[A-Za-z]:\\\\|site-packages|~/")
#: How Python shows a warning or a failure.
PYTHON_NOISE = re.compile(r"\b[A-Z]\w*(?:Warning|Error)\b: |Traceback \(most recent call "
                          r"last\)|warnings\.warn\(|\.py:\d+: ")
#: Inline images: base64, not text a reviewer reads.
IMAGE = re.compile(r"data:image/[a-z+]+;base64,[A-Za-z0-9+/=]+")


def _texts(output) -> list[str]:
    if output.get("output_type") == "stream":
        return [_joined(output.get("text", ""))]
    data = output.get("data", {})
    return [_joined(v) for k, v in data.items() if k.startswith("text/")]


def _joined(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def report_problems(folder, extra_paths=()) -> list[str]:
    """Everything in ``folder``'s reports that is not the report, one line each (empty when
    clean). ``extra_paths`` are paths of this run (its temporary folders) that must not
    show either, whatever their root."""
    folder = Path(folder)
    problems = []
    forbidden = [str(p) for p in extra_paths]

    def check(where: str, text: str, code: bool = False) -> None:
        text = IMAGE.sub("", text)
        patterns = [(PATH, "a filesystem path")]
        if not code:   # code may name warnings; only what it shows must not
            patterns.append((PYTHON_NOISE, "a Python warning or error"))
        for pattern, what in patterns:
            match = pattern.search(text)
            if match:
                start = max(0, match.start() - 60)
                problems.append(f"{where}: {what}: ...{text[start:match.end() + 60]!r}...")
        for path in forbidden:
            if path in text:
                problems.append(f"{where}: the run's path {path}")

    notebooks = sorted(folder.glob("*.ipynb"))
    assert notebooks, f"no executed notebook in {folder}"
    for nb_path in notebooks:
        nb = json.loads(nb_path.read_text(encoding="utf-8"))
        for number, cell in enumerate(nb["cells"], start=1):
            where = f"{nb_path.name} cell {number}"
            check(where + " source", _joined(cell.get("source", "")), code=True)
            for output in cell.get("outputs", []):
                kind = output.get("output_type")
                if kind == "error":
                    problems.append(f"{where}: an error output ({output.get('ename')})")
                if kind == "stream" and output.get("name") == "stderr":
                    problems.append(f"{where}: a stderr stream: {_joined(output['text'])[:200]!r}")
                for text in _texts(output):
                    check(where, text)
    for html in sorted(folder.glob("*.html")):
        check(html.name, html.read_text(encoding="utf-8"))
    return problems


#: A warning raised in hubnb's own code, as run.log keeps it ("hubnb/render.py:174: UserWarning").
OWN_WARNING = re.compile(r"hubnb/[\w/]+\.py:\d+: \w*Warning")


def own_warnings(folder) -> list[str]:
    """The lines of ``folder``'s run.log that are warnings raised in hubnb's own code:
    run.log may keep a library's chatter, but a warning of ours is a defect to fix."""
    log = Path(folder) / "run.log"
    assert log.is_file(), f"no run.log in {folder}"
    return [line for line in log.read_text(encoding="utf-8").splitlines()
            if OWN_WARNING.search(line)]
