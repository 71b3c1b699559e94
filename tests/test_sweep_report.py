"""The sweep report: its Pareto front on a hand-made study, the page's parts and links."""

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial

from slimgen.sweep_report import front_trials, pareto_front, sweep_report_html, \
    write_sweep_report
from slimgen.sweep_space import space_from_dict


def test_pareto_front_by_hand():
    # (accuracy max, LCs min)
    points = [(0.90, 3000), (0.95, 4000), (0.85, 2000), (0.90, 3500), (0.80, 2500),
              (0.95, 4000), (0.96, 6000)]
    # (0.90, 3500) is dominated by (0.90, 3000); (0.80, 2500) by (0.85, 2000); the two equal
    # (0.95, 4000) stay together
    assert pareto_front(points, ["maximize", "minimize"]) == [0, 1, 2, 5, 6]
    assert pareto_front(points, ["minimize", "minimize"]) == [2, 4]
    assert pareto_front([(1, 2, 3)], ["minimize"] * 3) == [0]
    assert pareto_front([], ["minimize"]) == []


def _study(tmp_path):
    space = space_from_dict({"name": "hand", "parameters": {"lanes": [1, 2, 4]},
                             "objectives": {"hw_accuracy": "max", "lc": "min",
                                            "cycles": "min"}, "n_trials": 6})
    study = optuna.create_study(study_name="hand", directions=space.directions,
                                storage=f"sqlite:///{tmp_path / 'study.db'}")
    study.set_user_attr("space", space.to_dict())
    dist = {"lanes": CategoricalDistribution([1, 2, 4])}
    values = {0: (0.90, 3000, 500), 1: (0.95, 4000, 500), 2: (0.90, 3500, 600),
              3: (0.92, 3000, 400), 4: (0.80, 5000, 900)}
    for n, v in values.items():
        run = tmp_path / "runs" / f"trial-{n:04d}"
        study.add_trial(create_trial(
            state=TrialState.COMPLETE, values=list(v), params={"lanes": [1, 2, 4][n % 3]},
            distributions=dist,
            user_attrs={"run": str(run), "figures": {
                "hw_accuracy": v[0], "lc_used": v[1], "cycles_per_inference": v[2],
                "int_accuracy": v[0], "report_html": str(run / "report.html")}}))
    study.add_trial(create_trial(state=TrialState.PRUNED, params={"lanes": 4},
                                 distributions=dist,
                                 user_attrs={"infeasible": "build: does not fit"}))
    study.add_trial(create_trial(state=TrialState.FAIL, params={"lanes": 1}, distributions=dist,
                                 user_attrs={"worker": "h:1", "run": "r"}))
    study.set_user_attr("default", {"figures": {"hw_accuracy": 0.91, "lc_used": 3200,
                                                "cycles_per_inference": 500}, "run": "d"})
    return study


def test_the_report_front_of_a_hand_made_study(tmp_path):
    study = _study(tmp_path)
    complete, front = front_trials(study)
    assert len(complete) == 5
    # 0 is dominated by 3 (as accurate... 0.92 > 0.90, same LCs, fewer cycles); 2 by 0;
    # 4 by every other; 1 is the most accurate; 3 the fewest cycles
    assert sorted(t.number for t in front) == [1, 3]
    page = sweep_report_html(study, tmp_path, finished=True)
    assert "Pareto front" in page and "data:image/png;base64," in page
    # the table: the front's designs, the most accurate first, each linking to its report
    table = page[page.index("<table><tr><th>trial"):]
    assert table.index("<td class=\"num\">1</td>") < table.index("<td class=\"num\">3</td>")
    assert '<a href="runs/trial-0001/report.html">report</a>' in page
    assert '<a href="runs/trial-0003/report.html">report</a>' in page
    assert "trial-0002/report.html" not in page
    assert "5/6 trials done (4 complete, 1 infeasible)" not in page   # counted from the study:
    assert "6/6 trials done (5 complete, 1 infeasible), 0 running, 0 queued, 1 failed" in page
    assert "build: does not fit" in page
    assert "Default design: hw_accuracy 0.9100, lc_used 3,200, cycles_per_inference 500." in page
    assert 'http-equiv="refresh"' not in page
    assert 'http-equiv="refresh"' in sweep_report_html(study, tmp_path, finished=False)
    path = write_sweep_report(study, tmp_path)
    assert path.read_text() == page
