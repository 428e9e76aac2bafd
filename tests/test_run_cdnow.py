"""`hubnb run` on the CDNOW sample with a backtest: metrics.json has every key of the contract."""

import json

import pytest
import yaml

from hubnb.datasets import cdnow_dataset, load_cdnow
from hubnb.run import run

#: metrics.json as the contract shows it: every key must be there (extra keys are allowed).
SPEC_SHAPE = {
    "merchant": None, "generated_at": None, "hubnb_version": None,
    "period": {"start": None, "end": None}, "comparison": {"start": None, "end": None},
    "customer_hub": {
        "total_accounts": None,
        "service_interactions": {"value": None, "previous": None, "change_pct": None},
        "active_accounts": {"value": None, "previous": None, "change_pct": None},
        "revenue_generated": {"value": None, "previous": None, "change_pct": None},
        "average_order_value": {"value": None, "previous": None, "change_pct": None,
                                "orders": None},
        "service_breakdown": {"order_tracked": None, "return_started": None,
                              "coupon_applied": None, "help_clicked": None,
                              "chat_started": None},
    },
    "clv": {
        "eligible": None, "customers": None, "time_unit": None, "horizon_days": None,
        "model": {"name": None,
                  "params": {k: {"mean": None, "sd": None} for k in ("r", "alpha", "p", "q", "v")},
                  "selection": {"method": None, "candidates": {
                      m: {"elpd_loo": None, "se": None, "d_elpd": None, "d_se": None,
                          "pareto_k_over_0_7": None} for m in ("pareto_nbd", "mbg_nbd")}},
                  "r_hat_max": None, "ess_bulk_min": None, "divergences": None,
                  "fit_seconds": None},
        "totals": {"predicted_orders": {"mean": None, "lower": None, "upper": None},
                   "predicted_clv": {"mean": None, "lower": None, "upper": None}},
        "backtest": {"holdout_days": None, "actual_orders": None,
                     "predicted_orders": {"mean": None, "lower": None, "upper": None},
                     "correlation": None, "mae": None,
                     "coverage": {"nominal": None, "orders": None}},
    },
}


def missing_keys(shape, got, where=""):
    out = []
    for key, sub in shape.items():
        if not isinstance(got, dict) or key not in got:
            out.append(where + key)
        elif isinstance(sub, dict):
            out += missing_keys(sub, got[key], where + key + ".")
    return out


@pytest.mark.slow
def test_hubnb_run_on_cdnow_with_backtest_writes_every_spec_key(tmp_path):
    cdnow_dataset(tmp_path / "cdnow", kind="sample")
    params = yaml.safe_load(open("params/cdnow/cdnow.yaml"))
    params["data"] = "./cdnow"
    params["clv"].update(draws=200, tune=300)
    (tmp_path / "cdnow.yaml").write_text(yaml.safe_dump(params))

    final = run(tmp_path / "cdnow.yaml", out_root=tmp_path / "out", log=lambda m: None)

    metrics = json.loads((final / "metrics.json").read_text())
    assert missing_keys(SPEC_SHAPE, metrics) == []
    # the CDNOW reports hold only the report: no warning, error, stderr or path
    from report_checks import own_warnings, report_problems

    assert report_problems(final, [tmp_path]) == []
    assert own_warnings(final) == []
    clv = metrics["clv"]
    # Counted independently: zero-value records are left out (exclude_zero_value), so the
    # customers are those of the 2,357 with at least one paid purchase.
    tx = load_cdnow("sample")
    tx = tx[tx.dollar_value > 0]
    assert clv["eligible"] is True and clv["time_unit"] == "day"
    # the winner's own parameters are there: (a, b) for MBG/NBD, (s, beta) for Pareto/NBD
    own = {"mbg_nbd": {"a", "b"}, "pareto_nbd": {"s", "beta"}}[clv["model"]["name"]]
    assert own <= set(clv["model"]["params"])
    sel = clv["model"]["selection"]["candidates"]
    assert sel[clv["model"]["name"]]["elpd_loo"] == max(c["elpd_loo"] for c in sel.values())
    assert clv["customers"] == tx.customer_id.nunique()
    bt = clv["backtest"]
    assert bt["holdout_days"] == 273
    # Holdout orders: purchase days after 1997-09-30, same-day records of a customer are one.
    tx = tx[tx.date > "1997-09-30"]
    assert bt["actual_orders"] == len(tx.drop_duplicates(["customer_id", "date"]))
    lo, hi = bt["predicted_orders"]["lower"], bt["predicted_orders"]["upper"]
    assert lo < bt["predicted_orders"]["mean"] < hi
    # The chosen model predicts the holdout total within 20% (BG/NBD: 13% under, MBG/NBD 17%
    # under, Pareto/NBD 14% under on this sample), its churn ranks the holdout's buyers well
    # above chance (BG/NBD's does worse than chance: 0.32), and the per-profile predictive
    # intervals hold as often as the model expects for whole-number counts.
    assert abs(bt["total_error_pct"]) < 20
    assert bt["auc"]["churn"] > 0.6 and bt["auc"]["next_order_date"] > 0.6
    assert bt["coverage"]["nominal"] == 0.9
    assert abs(bt["coverage"]["orders"] - bt["coverage"]["orders_expected"]) < 0.03
    # CDNOW has no regularity: the grid's best k is 1, so the candidates are the two
    # Poisson-timing models, and each is backtested, the chosen one as it was fitted
    assert clv["model"]["regularity"]["k"] == 1
    assert set(bt["candidates"]) == set(sel) == {"pareto_nbd", "mbg_nbd"}
    assert bt["model"] == clv["model"]["name"]
    for name, cand in bt["candidates"].items():
        assert cand["model"] == name
        assert cand["posterior"] == ("nuts" if name == clv["model"]["name"] else "laplace-is")
        assert 0 <= cand["p_order_30d_calibration_error"] < 0.05
        assert len(cand["reliability"]) == 10
        assert cand["weekly_tracking"][-1]["day"] == 273
    # No hub data: the hub report says so rather than showing zeros as measurements.
    assert metrics["customer_hub"]["service_interactions"]["value"] is None
    assert "no data yet" in (final / "customer_hub.html").read_text()
    assert {"clv.html", "customer_hub.html", "clv_profiles.csv", "reengage.csv"} <= \
        {p.name for p in final.iterdir()}
    assert sorted(p.name for p in (final / "segments").iterdir()) == \
        ["big_spenders.csv", "still_with_us.csv"]
