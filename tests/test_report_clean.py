"""A report holds only the report: no warning, error, stderr or path of the machine.

``hubnb run`` moves whatever a notebook writes to stderr (Python warnings among them) into
``run.log`` beside the reports, and passes the notebooks paths relative to the folder they
are published in. The demo, CDNOW and four-language runs are checked where they are made
(tests/test_browser.py, tests/test_run_cdnow.py, tests/test_i18n.py); here the edge case of
one customer on one day, and the rule itself.
"""

import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from report_checks import own_warnings, report_problems
from test_data import write
from test_run import notebook, tiny_merchant

from hubnb.run import RUN_LOG, run


def test_the_check_finds_what_a_report_must_not_hold(tmp_path):
    """The check can fail: a stderr stream, an error, a printed warning and a path each
    count, and a clean notebook passes."""
    folder = tmp_path / "report"
    folder.mkdir()
    cells = [new_markdown_cell("# Report"), new_code_cell("x = 1", outputs=[
        new_output("stream", name="stdout", text="a number: 1,234.5\n")])]
    nbformat.write(new_notebook(cells=cells), folder / "clean.ipynb")
    assert report_problems(folder) == []
    bad = [
        new_output("stream", name="stderr", text="something\n"),
        new_output("error", ename="ValueError", evalue="no", traceback=[]),
        new_output("display_data", data={"text/plain": "UserWarning: AutoDateLocator was"}),
        new_output("display_data", data={"text/html": "<p>/home/ana/shop/data</p>"}),
    ]
    for number, output in enumerate(bad):
        nbformat.write(new_notebook(cells=[new_code_cell("y = 2", outputs=[output])]),
                       folder / f"bad{number}.ipynb")
    found = report_problems(folder)
    for number in range(len(bad)):
        assert any(line.startswith(f"bad{number}.ipynb") for line in found), (number, found)


def test_warnings_and_stderr_go_to_run_log_not_the_report(tmp_path):
    nbs = tiny_merchant(tmp_path)
    notebook(nbs / "noisy.ipynb",
             "import sys, warnings\n"
             "warnings.warn('the chart may be wrong: LOUD_WARNING_MARKER')\n"
             "print('STDERR_MARKER', file=sys.stderr)\n"
             "print('the report line')")
    final = run(tmp_path / "tiny.yaml", out_root=tmp_path / "out", notebooks_dir=nbs,
                log=lambda m: None)
    assert report_problems(final, [tmp_path]) == []
    html = (final / "noisy.html").read_text()
    assert "the report line" in html
    assert "LOUD_WARNING_MARKER" not in html and "STDERR_MARKER" not in html
    executed = json.dumps([c.get("outputs", []) for c in
                           json.loads((final / "noisy.ipynb").read_text())["cells"]])
    assert "LOUD_WARNING_MARKER" not in executed and "STDERR_MARKER" not in executed
    log = (final / RUN_LOG).read_text()
    assert "noisy.ipynb cell" in log
    assert "UserWarning: the chart may be wrong: LOUD_WARNING_MARKER" in log
    assert "STDERR_MARKER" in log
    assert "running noisy for tiny ..." in log   # the progress lines too


ONE_DAY = "2026-03-10"
ONE_CUSTOMER_ONE_DAY = {
    "profiles": "profile_id,created_at,account_created_at,email\n"
                f"solo,{ONE_DAY}T08:00:00Z,{ONE_DAY}T08:05:00Z,solo@example.com\n",
    "orders": "order_id,profile_id,placed_at,value,source_name,is_subscription,signed_in\n"
              f"o1,solo,{ONE_DAY}T09:15:00Z,42.00,web,false,true\n",
    "order_lines": "order_id,line_id,product_id,line_total,added_from_hub\n"
                   "o1,1,P1,42.00,true\n",
    "hub_events": "event_id,profile_id,occurred_at,event_type\n"
                  f"e1,solo,{ONE_DAY}T09:00:00Z,hub_opened\n"
                  f"e2,solo,{ONE_DAY}T09:10:00Z,hub_add_to_cart\n",
}


@pytest.mark.parametrize("locale", ["en", "ko"])
def test_one_customer_on_one_day_gives_clean_reports(tmp_path, locale):
    """The smallest merchant there is: one profile, one order and its hub events, all on
    the as-of day. Both real notebooks run, CLV says it is not eligible, and neither report
    shows a warning, an error or a path."""
    write(tmp_path / "solo", **ONE_CUSTOMER_ONE_DAY)
    (tmp_path / "solo.yaml").write_text(
        f"merchant: solo\ndata: ./solo\ntimezone: UTC\nas_of: {ONE_DAY}\n"
        f"period: last_7_days\nhub: {{launched_on: {ONE_DAY}}}\n"
        "clv: {draws: 100, tune: 100, chains: 1}\n")
    final = run(tmp_path / "solo.yaml", out_root=tmp_path / "out", log=lambda m: None,
                locale=locale)
    assert sorted(p.name for p in final.glob("*.html")) == ["clv.html", "customer_hub.html"]
    assert report_problems(final, [tmp_path]) == []
    assert own_warnings(final) == []
    metrics = json.loads((final / "metrics.json").read_text())
    assert metrics["clv"]["eligible"] is False
