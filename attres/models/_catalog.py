"""Every built-in model by name: what it is, what it reads and the recipe it trains with.

Each builder is named by place ("module:attribute") and imported when a model is built, so
the registry can be read (by a grid's driver planning its trials, by ``--help``) without
importing torch or scikit-learn. A model file holds the model; this table says what the
grid calls it.
"""

from __future__ import annotations

from attres.models._registry import register_encoder_head, register_model

# --- the paper's networks (attres.models.attres, attres.models.baselines) ---

# name -> (attention_stages, final_attention): the only difference between the six networks.
VARIANTS: dict[str, tuple[tuple[bool, bool, bool], bool]] = {
    "att-Res0": ((False, False, False), False),
    "att-Res0+att": ((False, False, False), True),  # one SpatialAttention before pooling
    "att-Res1": ((False, False, True), False),
    "att-Res2": ((True, True, False), False),
    "att-Res": ((False, True, True), False),
    "att-Res3": ((True, True, True), False),
}
for _name, (_stages, _final) in VARIANTS.items():
    register_model(
        _name,
        builder="attres.models.attres:AttRes",
        options={"attention_stages": _stages, "final_attention": _final},
    )

# att-Res+: the att-Res network with the recipe chosen for speaker-independent recognition,
# by nested leave-one-speaker-out on CASIA (docs/results/search_loso.sh: the test speaker of
# a fold is never read by its trials; docs/results/README.md has every option tried).
ATT_RES_PLUS_RECIPE = {
    "schedule": "cosine",  # also the default of every model
    "warmup_epochs": 1.0,
    "label_smoothing": 0.1,
    "mixup": 0.2,
    "spec_masks": 2,
    "normalize": "speaker",  # each speaker scaled by their own statistics
}
_stages, _final = VARIANTS["att-Res"]
register_model(
    "att-Res+",
    slug="att-res-plus",
    recipe=ATT_RES_PLUS_RECIPE,
    builder="attres.models.attres:AttRes",
    options={"attention_stages": _stages, "final_attention": _final},
)

register_model("CNN", builder="attres.models.baselines:CNN")
register_model("LSTM+CNN", builder="attres.models.baselines:LSTMCNN")
register_model("AlexNet", builder="attres.models.baselines:AlexNet")
register_model("ResNet-18", slug="resnet18", builder="attres.models.baselines:ResNet18")
register_model("SVM", kind="sklearn", builder="attres.models.svm:SpectrogramSVM")

# --- models over openSMILE functionals (attres.models.functionals) ---

# the recipe of every model here: per-speaker scaling, and none of the image options (delta
# channels, spectrogram masks, mixup) whatever the grid's settings
FUNCTIONALS_RECIPE = {"normalize": "speaker", "deltas": 0, "spec_masks": 0, "mixup": 0.0}
CLASSIFIERS = ("lr", "svm")
SETS = ("egemaps", "compare")
_FUNCTIONALS = "attres.models.functionals"


def _functionals(name: str, builder: str, sets: tuple[str, ...], **options: object) -> None:
    register_model(
        name, kind="sklearn", features=sets, recipe=FUNCTIONALS_RECIPE,
        builder=f"{_FUNCTIONALS}:{builder}", options=options,
    )  # fmt: skip


for _set, _name in (("egemaps", "eGeMAPS"), ("compare", "ComParE")):
    for _clf in CLASSIFIERS:
        _functionals(f"{_name}-{_clf.upper()}", "FunctionalsLinear", (_set,), classifier=_clf)
    register_model(
        f"{_name}-MLP", features=(_set,), recipe=FUNCTIONALS_RECIPE,
        builder=f"{_FUNCTIONALS}:FunctionalsMLP",
    )  # fmt: skip
_functionals("eGeMAPS-LR-ST", "SelfTrainedLinear", ("egemaps",))
_functionals("openSMILE-linear", "OpenSmileLinear", SETS)
# the recipe issue's candidates
_functionals("eGeMAPS-MLP-ST", "mlp_self_trained", ("egemaps",))
_functionals("ComParE-LR-FS", "compare_selected", ("compare",))
_functionals("Sets-LR", "SetsAverage", SETS)
_functionals("Sets-LR-ST", "sets_self_trained", SETS)
# The one recipe for every corpus: the candidate with the best mean UA on validation
# speakers across the public corpora (docs/results/run_recipe_search.sh, recipe_table.py)
_functionals("SER-recipe", "sets_self_trained", SETS)

# --- heads over a speech encoder's layers (attres.models.encoders) ---

# none of the image options, whatever the grid's settings; the scaling is the grid's
ENCODER_RECIPE = {"deltas": 0, "spec_masks": 0, "mixup": 0.0}
for _suffix, _head in (
    ("LR", "EncoderLinear"),
    ("MLP", "EncoderMLP"),
    ("WS", "EncoderWeightedSum"),
):
    register_encoder_head(_suffix, recipe=ENCODER_RECIPE, builder=f"attres.models.encoders:{_head}")
