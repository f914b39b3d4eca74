"""How far a last-digit rounding moves a functionals model: the model fitted on one split's
training rows as they are, and again with each value changed in its last float32 digit.

    python docs/results/rounding_check.py FEATURES SPLIT [--model ComParE-LR] [--set compare]
        [--tol T]

SPLIT is a published split (docs/results/<corpus>/<protocol>/splits/<split>.json). The
rows go in as stored, without the grid's per-speaker scaling. Prints the solver's
iterations of both fits, the largest change in a test clip's class probability and how many
test predictions changed: what another machine's arithmetic can do to a published trial
(docs/results/README.md, "Reproduced on a fresh VM"). ``--tol``: the classifier's stopping
tolerance instead of its own (scikit-learn's default for L-BFGS, 1e-4).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from attres.models import create_model
from attres.models.functionals import class_probabilities
from featurize.store import load_features, load_functionals


def fitted_probabilities(model_name: str, x_train, y_train, x_test, classes: int, tol=None):
    model = create_model(model_name, num_classes=classes, in_chans=x_train.shape[1])
    if tol is not None:
        model.pipeline[-1].set_params(tol=tol)
    model.fit(x_train, y_train)
    return class_probabilities(model.pipeline, x_test, classes), model.pipeline[-1].n_iter_


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("features")
    parser.add_argument("split")
    parser.add_argument("--model", default="ComParE-LR")
    parser.add_argument("--set", default="compare", help="the functionals set the model reads")
    parser.add_argument("--tol", type=float, help="the classifier's stopping tolerance")
    args = parser.parse_args()
    split = json.loads(Path(args.split).read_text())
    index = load_features(args.features, spectrograms=False)
    row = {uid: i for i, uid in enumerate(index.utterance_ids)}
    train, test = (np.asarray(split[side]) for side in ("train", "test"))
    y_train = index.labels[[row[uid] for uid in train]]
    x_train, x_test = (
        load_functionals(args.features, args.set, ids).values.astype(np.float64)[:, :, None, None]
        for ids in (train, test)
    )
    classes = len(index.label_names)

    def fitted(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return fitted_probabilities(args.model, x, y_train, x_test, classes, args.tol)

    as_stored, n_stored = fitted(x_train)
    last_digit = 1 + np.random.default_rng(0).uniform(-1, 1, x_train.shape) * 2.0**-23
    rounded, n_rounded = fitted(x_train * last_digit)
    changed = int((as_stored.argmax(1) != rounded.argmax(1)).sum())
    gap = np.abs(as_stored - rounded).max()
    print(
        f"{args.model} on {args.split}: solver iterations {n_stored.tolist()} and "
        f"{n_rounded.tolist()}; largest probability change {gap:.1e}; "
        f"{changed} of {len(test)} test predictions changed"
    )


if __name__ == "__main__":
    main()
