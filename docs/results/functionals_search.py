"""Inner-validation search of the classifiers over openSMILE functionals (issue #22).

    python docs/results/functionals_search.py FEATURES > docs/results/casia/search/functionals.md

FEATURES: CASIA featurized with ``--functionals egemaps,compare``. For each leave-one-
speaker-out fold, the test speaker is set aside unread; each option is fitted on two of
the other three speakers and scored (UA) on the third, all three rotations, and the table
gives the mean over rotations per fold and over folds. Every speaker's functionals are
z-scored by that speaker's own statistics first (no label read), as the models'
``normalize speaker`` recipe does. The options: the logistic regression of
``eGeMAPS-LR`` at two C, shrinkage LDA, an RBF SVM, ComParE and both sets side by side,
the two sets' probabilities averaged, and the self-training of ``eGeMAPS-LR-ST``
(``attres/models/functionals.py``) at three settings (rounds, largest fraction of a
speaker's clips labelled), the last being its defaults.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable

import numpy as np
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.metrics import balanced_accuracy_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from attres.inputs import speaker_standardize
from attres.models.functionals import SelfTrainedLinear, linear_pipeline
from featurize.store import load_features, load_functionals

Option = Callable[[dict, np.ndarray, np.ndarray, np.ndarray], np.ndarray]  # -> predictions


def fitted(set_name: str, make: Callable) -> Option:
    def run(x, y, train, held):
        return make().fit(x[set_name][train], y[train]).predict(x[set_name][held])

    return run


def sets_averaged(x, y, train, held):
    probabilities = [
        linear_pipeline("lr", c).fit(x[name][train], y[train]).predict_proba(x[name][held])
        for name, c in (("egemaps", 0.01), ("compare", 0.001))
    ]
    return sum(probabilities).argmax(axis=1)


def self_trained(rounds: int, fraction: float) -> Option:
    def run(x, y, train, held):
        model = SelfTrainedLinear(6, x["egemaps"].shape[1], rounds=rounds, fraction=fraction)
        return model.fit(x["egemaps"][train], y[train]).predict(x["egemaps"][held])

    return run


def scaled(estimator) -> Callable:
    return lambda: make_pipeline(StandardScaler(), estimator)


OPTIONS: dict[str, Option] = {
    "eGeMAPS, LR C=0.01 (eGeMAPS-LR)": fitted("egemaps", lambda: linear_pipeline("lr", 0.01)),
    "eGeMAPS, LR C=0.1": fitted("egemaps", lambda: linear_pipeline("lr", 0.1)),
    "eGeMAPS, LDA, shrinkage": fitted(
        "egemaps", scaled(LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto"))
    ),
    "eGeMAPS, RBF SVM C=1": fitted("egemaps", scaled(SVC(C=1.0))),
    "ComParE, LR C=0.001": fitted("compare", lambda: linear_pipeline("lr", 0.001)),
    "eGeMAPS + ComParE side by side, LR C=0.001": fitted(
        "both", lambda: linear_pipeline("lr", 0.001)
    ),
    "eGeMAPS LR and ComParE LR, probabilities averaged": sets_averaged,
    "eGeMAPS LR, self-trained, 2 rounds, up to 1/2": self_trained(2, 0.5),
    "eGeMAPS LR, self-trained, 3 rounds, up to 4/5": self_trained(3, 0.8),
    "eGeMAPS LR, self-trained, 5 rounds, up to all (eGeMAPS-LR-ST)": self_trained(5, 1.0),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("features")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)
    data = load_features(args.features)
    y, speakers = data.labels, data.speakers

    def scaled_set(name: str) -> np.ndarray:
        values = load_functionals(args.features, name, data.utterance_ids).values
        return speaker_standardize(values[:, :, None, None], speakers)[:, :, 0, 0]

    x = {"egemaps": scaled_set("egemaps"), "compare": scaled_set("compare")}
    x["both"] = np.hstack([x["egemaps"], x["compare"]])
    names = sorted(set(speakers))
    print("| option | " + " | ".join(f"f{i} ({s})" for i, s in enumerate(names)) + " | mean |")
    print("|---" * (len(names) + 2) + "|")
    for label, option in OPTIONS.items():
        per_fold = []
        for test in names:
            inner = [s for s in names if s != test]
            scores = []
            for held_out in inner:
                train = np.isin(speakers, [s for s in inner if s != held_out])
                held = speakers == held_out
                scores.append(balanced_accuracy_score(y[held], option(x, y, train, held)))
            per_fold.append(100 * float(np.mean(scores)))
        cells = " | ".join(f"{v:.1f}" for v in per_fold)
        print(f"| {label} | {cells} | {np.mean(per_fold):.1f} |", flush=True)
    print(f"\n(inner validation UA %; {len(names) - 1} rotations per fold)", file=sys.stderr)


if __name__ == "__main__":
    main()
