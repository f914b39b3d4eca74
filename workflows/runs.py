"""The RUNS folder: what every part of the workflow reads and writes, and nothing else.

Layout (a local folder, or a URI every node can reach)::

    RUNS/train_config.json          the resolved TrainConfig the trials share
    RUNS/features_used.json         the FEATURES the trials were trained on (fingerprint)
    RUNS/splits/<split>.json        train/test utterance ids of every split used
    RUNS/trials/<trial>.json        one record per finished trial (metrics, curves, provenance)
    RUNS/models/<trial>.*           the finished trial's model (``attres.saved``'s format)
    RUNS/results.parquet            all trial records, one row each (rebuilt at the end)
    STORAGE/checkpoints/<trial>/    an unfinished trial's state (STORAGE defaults to RUNS)

The grid writes it (``workflows.grid``), results read the records (``workflows.results``)
and the trained models are used from it (``workflows.use``). Nothing here imports Ray.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from attres.models import resolve_name
from featurize.location import Location
from workflows.record import TrialRecord

if TYPE_CHECKING:  # attres.saved imports torch: a grid's driver, which reads runs, does not
    from attres.saved import ModelMeta, SavedModel

TRAIN_CONFIG = "train_config.json"
FEATURES_USED = "features_used.json"
MODELS = "models"
RESULT_COLUMNS = (
    "trial", "model", "protocol", "seed", "fold", "split", "wa", "ua", "macro_f1",
    "wall_s", "train_s", "samples_per_s", "params", "flops", "epochs", "device",
)  # fmt: skip


def read_json(location: Location) -> Any:
    """The JSON file at ``location``, or None if there is none."""
    try:
        return json.loads(location.read())
    except FileNotFoundError:
        return None


def finished_trials(runs: str) -> set[str]:
    """Names of the trials whose record exists."""
    fs, root = Location(runs).filesystem()
    infos = fs.get_file_info(pafs.FileSelector(f"{root}/trials", allow_not_found=True))
    return {i.base_name[: -len(".json")] for i in infos if i.base_name.endswith(".json")}


def write_record(runs: str, record: TrialRecord) -> None:
    """Write one finished trial's record: from now on the trial counts as done."""
    trial = Location(runs).child("trials", f"{record.trial}.json")
    trial.write(json.dumps(record.to_dict(), indent=1))


def load_records(runs: str) -> list[TrialRecord]:
    """Every finished trial's record, sorted by trial name, upgraded to today's schema."""
    trials = Location(runs).child("trials")
    names = sorted(finished_trials(runs))
    return [TrialRecord.from_dict(json.loads(trials.child(f"{n}.json").read())) for n in names]


def model_records(runs: str, model: str) -> list[TrialRecord]:
    """The finished trial records of ``model`` (any name the registry resolves)."""
    name = resolve_name(model)
    return [r for r in load_records(runs) if r.model == name]


def write_results_table(runs: str) -> None:
    """RUNS/results.parquet: one row per finished trial, from the per-trial records."""
    records = load_records(runs)
    if not records:
        return
    columns = {c: [getattr(r, c) for r in records] for c in RESULT_COLUMNS}
    columns["confusion"] = [json.dumps(r.confusion) for r in records]
    columns["git_commit"] = [r.provenance["git_commit"] for r in records]
    table = pa.table(columns)
    Location(runs).child("results.parquet").write_with(lambda f: pq.write_table(table, f))


def save_model(runs: str, meta: ModelMeta, model: Any, kind: str) -> Location:
    """Keep a finished trial's model under RUNS/models; returns where its weights are.

    ``kind`` is the registry's: "torch" (one ``.pt``) or "sklearn" (``.skops`` + ``.json``).
    """
    from attres.saved import sklearn_bytes, torch_bytes

    models = Location(runs).child(MODELS)
    if kind == "sklearn":
        pipeline, meta_json = sklearn_bytes(meta, model)
        models.child(f"{meta.trial}.json").write(meta_json)
        models.child(f"{meta.trial}.skops").write(pipeline)
        return models.child(f"{meta.trial}.skops")
    models.child(f"{meta.trial}.pt").write(torch_bytes(meta, model))
    return models.child(f"{meta.trial}.pt")


def has_model(runs: str, trial: str) -> bool:
    models = Location(runs).child(MODELS)
    return any(models.child(f"{trial}{ext}").exists() for ext in (".pt", ".skops"))


def load_model(runs: str, trial: str) -> SavedModel:
    """The saved final model of ``trial``; SavedModelError if missing, unreadable or untrusted."""
    from attres.saved import SavedModelError, load_sklearn, load_torch

    models = Location(runs).child(MODELS)
    pt, skops_file = models.child(f"{trial}.pt"), models.child(f"{trial}.skops")
    try:
        if pt.exists():
            return load_torch(pt.read(), pt)
        if skops_file.exists():
            meta = models.child(f"{trial}.json").read()
            return load_sklearn(skops_file.read(), meta, skops_file)
    except OSError as err:  # FileNotFoundError included: the metadata beside the pipeline
        raise SavedModelError(f"cannot read the model of trial {trial}: {err}") from err
    raise SavedModelError(
        f"no saved model for trial {trial} under {models} (trained before models were kept? "
        "train it again into a new RUNS)"
    )
