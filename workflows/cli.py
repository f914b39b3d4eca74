"""The ``attres-flow`` command line. Thin: each command parses, makes one call, prints.

The work lives in the three wings: ``workflows.grid`` (featurize and train the grid),
``workflows.results`` (records into tables and pages), ``workflows.use`` (trained models on
new recordings); ``workflows.demo`` runs the whole chain. Ray, torch and the featurize
stack are imported inside the commands so ``--help`` is instant.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from attres.splits import Protocol

app = typer.Typer(
    help="Speech emotion recognition at scale: featurize a corpus, train the paper's models, "
    "print the paper's tables.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

Address = Annotated[
    str | None,
    typer.Option(help="Ray cluster to join (e.g. 127.0.0.1:6379); default: start a local one."),
]
Quiet = Annotated[
    bool,
    typer.Option(
        "--quiet",
        help="Show only each finished trial's [k/N] line and the summary, not every epoch.",
    ),
]


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


@app.command()
def synth(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write the corpus into.")],
    speakers: Annotated[int, typer.Option(min=1, help="Number of speakers.")] = 4,
    utterances: Annotated[
        int, typer.Option(min=1, help="Sentences per speaker, each read in all six emotions.")
    ] = 20,
    min_duration: Annotated[float, typer.Option(min=0.1, help="Shortest clip, seconds.")] = 1.0,
    max_duration: Annotated[float, typer.Option(min=0.1, help="Longest clip, seconds.")] = 2.5,
    sample_rate: Annotated[int, typer.Option(min=8000, help="Sample rate, Hz.")] = 16000,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same bytes.")] = 0,
    workers: Annotated[int, typer.Option(min=1, help="Processes to generate with.")] = 1,
) -> None:
    """Write a synthetic emotional-speech corpus in the CASIA layout (<speaker>/<emotion>/*.wav)."""
    from workflows.demo.synth import SynthConfig, synthesize_corpus

    if min_duration > max_duration:
        fail(f"--min-duration {min_duration} is above --max-duration {max_duration}")
    config = SynthConfig(
        speakers=speakers,
        utterances_per_emotion=utterances,
        min_duration_s=min_duration,
        max_duration_s=max_duration,
        sample_rate=sample_rate,
        seed=seed,
    )
    manifest = synthesize_corpus(out_dir, config, workers=workers)
    typer.echo(f"synth: wrote {speakers * utterances * 6} utterances; manifest {manifest}")


@app.command()
def corpora() -> None:
    """List the public corpora `featurize --corpus NAME` reads: layout, labels, source."""
    from featurize.corpora import describe

    typer.echo(describe())


class FrequencyScale(str, Enum):
    linear = "linear"
    mel = "mel"


@app.command()
def featurize(
    corpus: Annotated[Path, typer.Argument(help="Corpus root (<speaker>/<emotion>/<file>.wav).")],
    out: Annotated[str, typer.Option("--out", help="FEATURES folder or URI (s3://, gs://).")],
    manifest: Annotated[
        Path | None,
        typer.Option(help="CSV with path, speaker, emotion (paths relative to the CSV)."),
    ] = None,
    corpus_name: Annotated[
        str | None,
        typer.Option(
            "--corpus",
            help="A public corpus by name, its own file layout read (`attres-flow corpora` "
            "lists them); labels mapped to shared names.",
        ),
    ] = None,
    image_size: Annotated[int, typer.Option(min=8, help="Spectrogram image side.")] = 128,
    sample_rate: Annotated[int, typer.Option(help="Analysis sample rate, Hz.")] = 16000,
    frame_ms: Annotated[float, typer.Option(help="Frame length, ms.")] = 25.0,
    hop_ms: Annotated[float, typer.Option(help="Frame shift, ms.")] = 10.0,
    n_fft: Annotated[int, typer.Option(help="FFT points.")] = 512,
    window: Annotated[str, typer.Option(help="hamming, hann or rectangular.")] = "hamming",
    frequency_scale: Annotated[
        FrequencyScale, typer.Option(help="linear (the paper's), or mel: a mel filterbank first.")
    ] = FrequencyScale.linear,
    n_mels: Annotated[int, typer.Option(help="Mel bands (--frequency-scale mel).")] = 128,
    speeds: Annotated[
        str,
        typer.Option(
            help="Speed perturbation: comma-separated factors (e.g. 0.9,1.1), one extra "
            "training row each; train-all tests on the recordings as they are."
        ),
    ] = "",
    functionals: Annotated[
        str,
        typer.Option(
            help="openSMILE functionals beside each spectrogram: egemaps (88), compare "
            "(6,373), or both comma-separated; a featurized corpus gains them without its "
            "spectrograms being made again."
        ),
    ] = "",
    encoder: Annotated[
        list[str] | None,
        typer.Option(
            help="A speech encoder (transformers: wav2vec2, HuBERT, WavLM, data2vec-audio, "
            "Whisper) by hub id or local folder, as MODEL or NAME=MODEL: every layer's mean "
            "over each clip, into FEATURES/_encoders/NAME (repeatable, or comma-separated); "
            "a featurized corpus gains it without the rest being made again."
        ),
    ] = None,
    encoder_gpus: Annotated[
        float | None,
        typer.Option(help="GPU share per encoder actor (0.5: two per GPU); default 1 if any."),
    ] = None,
    encoder_actors: Annotated[
        int | None,
        typer.Option(min=1, help="Encoder actors; default: one per GPU share, or per 2 CPUs."),
    ] = None,
    shard_rows: Annotated[int, typer.Option(min=1, help="Rows per Parquet shard (at most).")] = 256,
    address: Address = None,
) -> None:
    """Featurize a corpus into Parquet spectrogram shards with Ray Data (resumable)."""
    from featurize.config import FeatureConfig
    from featurize.corpora import layout
    from featurize.corpus import CorpusError
    from featurize.encoder_pipeline import EncoderRun
    from featurize.encoders import EncoderError, parse_encoders, resolve_encoder
    from featurize.functionals import check_sets
    from featurize.pipeline import NothingFeaturizedError, run_featurize
    from featurize.raysession import SharedPathError
    from featurize.store import FeatureStoreError

    try:
        config = FeatureConfig(
            sample_rate=sample_rate,
            frame_ms=frame_ms,
            hop_ms=hop_ms,
            n_fft=n_fft,
            window=window,
            image_size=image_size,
            frequency_scale=frequency_scale.value,
            n_mels=n_mels,
            speeds=tuple(float(s) for s in speeds.split(",") if s.strip()),
        )
    except ValueError as err:
        fail(f"feature settings: {err}")
    if corpus_name is not None and manifest is not None:
        fail("give --corpus or --manifest, not both")
    try:
        named = layout(corpus_name) if corpus_name is not None else None
    except ValueError as err:
        fail(f"--corpus: {err}")
    try:
        sets = check_sets(tuple(s.strip() for s in functionals.split(",") if s.strip()))
    except ValueError as err:
        fail(f"--functionals: {err}")
    try:  # each encoder found before any work, or refused naming how to provide it
        sources = tuple(resolve_encoder(n, m) for n, m in parse_encoders(encoder or []))
        encoder_run = EncoderRun(gpus_per_actor=encoder_gpus, actors=encoder_actors)
    except (EncoderError, ValueError) as err:
        fail(f"--encoder: {err}")
    try:
        summary = run_featurize(
            corpus, out, config, manifest=manifest, address=address, shard_rows=shard_rows,
            layout=named, functionals=sets, encoders=sources, encoder_run=encoder_run,
        )  # fmt: skip
    except (
        CorpusError, EncoderError, FeatureStoreError, NothingFeaturizedError, SharedPathError
    ) as err:  # fmt: skip
        fail(str(err))
    for line in summary.lines():
        typer.echo(line)


class Schedule(str, Enum):
    cosine = "cosine"
    constant = "constant"


class Precision(str, Enum):
    auto = "auto"
    bf16 = "bf16"
    fp16 = "fp16"
    fp32 = "fp32"


class Normalization(str, Enum):
    global_ = "global"
    speaker = "speaker"


class TableFormat(str, Enum):
    markdown = "markdown"
    csv = "csv"
    latex = "latex"


def parse_numbers(text: str, option: str) -> list[int]:
    """ "0", "0,1,2" or "0-4" -> list of numbers (seeds, or folds); refuses an empty list."""
    numbers: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        try:
            numbers += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
        except ValueError:
            fail(f"{option}: cannot read {text!r}; use e.g. 0 or 0,1,2 or 0-4")
    if not numbers:
        fail(f"{option}: {text!r} names none; use e.g. 0 or 0,1,2 or 0-4")
    return numbers


def parse_models(text: str) -> list[str]:
    from attres.models import PAPER_MODELS, resolve_name

    if text.strip().lower() == "all":
        return list(PAPER_MODELS)
    try:
        return [resolve_name(m.strip()) for m in text.split(",") if m.strip()]
    except ValueError as err:
        fail(f"--models: {err}")


class Group(str, Enum):
    speaker = "speaker"
    session = "session"


class PartitionSource(str, Enum):
    emobox = "emobox"
    msp_podcast = "msp-podcast"


@app.command()
def partition(
    source: Annotated[PartitionSource, typer.Argument(help="Whose partition to convert.")],
    folder: Annotated[
        Path,
        typer.Argument(
            help="emobox: EmoBox's data/<corpus> folder (fold_*/...jsonl); msp-podcast: the "
            "corpus root (Labels/labels_consensus.csv)."
        ),
    ],
    out: Annotated[Path, typer.Option(help="The partition CSV to write.")],
) -> None:
    """Write a corpus's standard partition as the CSV `train-all --protocol predefined
    --partition` reads (utterance, fold, split)."""
    from workflows.grid.partition import (
        PartitionError,
        partition_from_emobox,
        partition_from_msp_podcast,
        write_partition,
    )

    read = partition_from_emobox if source is PartitionSource.emobox else partition_from_msp_podcast
    try:
        entries = read(folder)
    except PartitionError as err:
        fail(str(err))
    folds = sorted({fold for _, fold, _ in entries})
    write_partition(entries, out)
    typer.echo(f"partition: {len(entries)} rows, {len(folds)} fold(s) -> {out}")


@app.command("train-all")
def train_all_command(
    features: Annotated[str, typer.Argument(help="FEATURES folder or URI from `featurize`.")],
    out: Annotated[str, typer.Option("--out", help="RUNS folder or URI for the results.")],
    models: Annotated[
        str, typer.Option(help="Comma-separated model names, or 'all' (the paper's eleven).")
    ] = "all",
    seeds: Annotated[str, typer.Option(help="Seeds: 0, 0,1,2 or 0-4.")] = "0",
    folds: Annotated[
        str | None,
        typer.Option(help="Only these folds of loso or kfold (0, 0,2 or 1-3); default: all."),
    ] = None,
    epochs: Annotated[int, typer.Option(min=1, help="Epochs (the paper: 25).")] = 25,
    batch_size: Annotated[
        int | None, typer.Option(min=2, help="Mini-batch size; default: 32 (docs/performance.md).")
    ] = None,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
    schedule: Annotated[
        Schedule, typer.Option(help="Learning rate: cosine (per-step decay to 0), or constant.")
    ] = Schedule.cosine,
    warmup_epochs: Annotated[float, typer.Option(help="Linear warm-up of cosine.")] = 1.0,
    label_smoothing: Annotated[float, typer.Option(help="Cross-entropy smoothing.")] = 0.0,
    mixup: Annotated[float, typer.Option(help="Mixup Beta(alpha, alpha); 0: off.")] = 0.0,
    spec_masks: Annotated[
        int, typer.Option(help="SpecAugment: frequency and time masks per example; 0: off.")
    ] = 0,
    validation: Annotated[
        float,
        typer.Option(
            help="Hold out this fraction of each training split and report on it instead of "
            "the test split: for choosing a recipe without touching the test."
        ),
    ] = 0.0,
    validation_speaker: Annotated[
        bool,
        typer.Option(
            "--validation-speaker",
            help="loso: in each fold hold out the next training speaker and report on that "
            "speaker (nested: leave one speaker out); speaker-kfold: the next fold's "
            "speakers. The test speakers are never read.",
        ),
    ] = False,
    normalize: Annotated[
        Normalization,
        typer.Option(help="Input scaling: global, or speaker (each by their own statistics)."),
    ] = Normalization.global_,
    deltas: Annotated[
        int, typer.Option(min=0, max=2, help="Extra input channels: time deltas of order 1..2.")
    ] = 0,
    protocol: Annotated[
        Protocol,
        typer.Option(
            help="paper: random 80/20; loso: leave one speaker out; kfold; speaker-kfold: "
            "--k folds of whole speakers, stratified by emotion; predefined: the corpus's own "
            "folds from --partition."
        ),
    ] = Protocol.paper,
    k: Annotated[int, typer.Option(min=2, help="Folds of the kfold protocol.")] = 5,
    group: Annotated[
        Group,
        typer.Option(
            help="What loso and speaker-kfold hold out: speakers, or IEMOCAP's recording "
            "sessions (leave one session out: 5 folds)."
        ),
    ] = Group.speaker,
    partition: Annotated[
        Path | None,
        typer.Option(
            help="predefined: CSV of utterance, fold, split (train, validation, test); "
            "`attres-flow partition` writes one from EmoBox's folds or MSP-Podcast's labels."
        ),
    ] = None,
    validation_part: Annotated[
        bool,
        typer.Option(
            "--validation-part",
            help="predefined: report on the partition's validation rows; its test rows are "
            "never read.",
        ),
    ] = False,
    extra_train: Annotated[
        str | None,
        typer.Option(
            help="Other featurized corpora (FEATURES, comma-separated) whose clips of this "
            "corpus's classes join every fold's training side, never its test; "
            "scikit-learn models of functionals."
        ),
    ] = None,
    extra_weight: Annotated[
        float, typer.Option(min=0.0, help="The weight of each --extra-train clip in fitting.")
    ] = 1.0,
    cpus_per_trial: Annotated[float, typer.Option(help="CPUs per trial.")] = 1.0,
    gpus_per_trial: Annotated[
        float, typer.Option(help="GPUs per trial; fractions (0.25) pack trials on one GPU.")
    ] = 0.0,
    precision: Annotated[
        Precision,
        typer.Option(
            help="Arithmetic on GPUs (CPUs train fp32): auto = bf16 where the GPU has it "
            "natively, else fp16 with a gradient scaler."
        ),
    ] = Precision.auto,
    workers_per_trial: Annotated[
        int,
        typer.Option(
            min=1, help="Workers per trial: > 1 trains each model data-parallel (Ray Train, DDP)."
        ),
    ] = 1,
    stream: Annotated[
        bool,
        typer.Option(
            "--stream",
            help="Stream each network's rows from the shards (Ray Data into Ray Train), for "
            "corpora larger than a node's memory; docs/performance.md says when.",
        ),
    ] = False,
    checkpoint_s: Annotated[
        float, typer.Option(min=0, help="Seconds of training between checkpoints.")
    ] = 120.0,
    max_concurrent: Annotated[
        int | None, typer.Option(help="Trials at once; default: as many as resources allow.")
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            help="Checkpoint/Tune storage, a folder or URI every node reaches; default RUNS."
        ),
    ] = None,
    test_features: Annotated[
        str | None,
        typer.Option(
            help="Cross-corpus: test on these FEATURES (another corpus), on the classes both "
            "have; the protocol is then cross-corpus."
        ),
    ] = None,
    classes: Annotated[
        str | None,
        typer.Option(
            help="Cross-corpus: only these shared classes (comma-separated); needed when the "
            "corpora share fewer classes than either has."
        ),
    ] = None,
    track: Annotated[
        list[str] | None,
        typer.Option(
            help="Log each trial to mlflow[=URI] (default: an SQLite store in RUNS/mlruns) "
            "or tensorboard[=DIR] (default: RUNS/tensorboard); repeatable, or comma-separated."
        ),
    ] = None,
    address: Address = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", help="Show Ray's own logs and status tables.")
    ] = False,
    quiet: Quiet = False,
) -> None:
    """Train every model x seed x fold concurrently on Ray (Tune + Train); resumable."""
    from featurize.location import Location
    from featurize.raysession import SharedPathError
    from featurize.store import FeatureStoreError
    from workflows.grid.config import TrainConfig
    from workflows.grid.plan import GridError
    from workflows.grid.tracking import Tracking
    from workflows.grid.train_all import train_all

    names = parse_models(models)
    try:
        tracking = Tracking.parse(track or [])
    except ValueError as err:
        fail(f"--track: {err}")
    cross = protocol is Protocol.cross_corpus or test_features is not None
    if cross and (test_features is None or protocol not in (Protocol.paper, Protocol.cross_corpus)):
        fail("cross-corpus is --test-features OTHER (with no other --protocol)")
    if classes is not None and not cross:
        fail("--classes names the classes of a cross-corpus run (--test-features OTHER)")
    try:
        cfg = TrainConfig(
            epochs=epochs,
            lr=lr,
            schedule=schedule.value,
            warmup_epochs=warmup_epochs,
            label_smoothing=label_smoothing,
            mixup=mixup,
            spec_masks=spec_masks,
            validation=validation,
            validation_speaker=validation_speaker,
            normalize=normalize.value,
            deltas=deltas,
            protocol=protocol.value if test_features is None else Protocol.cross_corpus.value,
            k=k,
            group=group.value,
            partition=str(partition.resolve()) if partition else "",
            validation_part=validation_part,
            extra_train=tuple(str(Location(p)) for p in (extra_train or "").split(",") if p),
            extra_weight=extra_weight,
            cpus_per_trial=cpus_per_trial,
            gpus_per_trial=gpus_per_trial,
            precision=precision.value,
            workers_per_trial=workers_per_trial,
            stream=stream,
            checkpoint_s=checkpoint_s,
            **({"batch_size": batch_size} if batch_size else {}),
        )
    except ValueError as err:
        fail(f"train-all: {err}")
    try:
        summary = train_all(
            features,
            out,
            names,
            parse_numbers(seeds, "--seeds"),
            cfg,
            folds=parse_numbers(folds, "--folds") if folds is not None else None,
            storage=storage,
            address=address,
            max_concurrent=max_concurrent,
            verbose=verbose,
            display="quiet" if quiet else "auto",
            test_features=test_features,
            classes=tuple(c.strip() for c in classes.split(",")) if classes else None,
            track=tracking,
        )
    except (FeatureStoreError, GridError, SharedPathError) as err:
        fail(str(err))
    typer.echo(
        f"train-all: {summary.finished} trials finished, {summary.skipped} already done, "
        f"{len(summary.failed)} failed in {summary.elapsed_s:.1f} s -> {out}"
    )
    if summary.failed:
        fail(f"failed trials (re-run the same command to retry): {', '.join(summary.failed)}")
    if summary.unfinished:
        fail(
            f"train-all stopped with {len(summary.unfinished)} trials unfinished; re-run the "
            "same command to resume them from their checkpoints (not Tuner.restore)"
        )


@app.command()
def tables(
    runs: Annotated[str, typer.Argument(help="RUNS folder from `train-all`.")],
    format: Annotated[
        TableFormat, typer.Option("--format", help="Output format.")
    ] = TableFormat.markdown,
    plots: Annotated[
        bool, typer.Option(help="Write confusion and curve PNGs to RUNS/plots.")
    ] = True,
    compare: Annotated[
        list[str] | None,
        typer.Option(
            help="Also compare every other model with this one, paired by seed (by held-out "
            "speaker under loso; repeatable)."
        ),
    ] = None,
    cost: Annotated[
        bool,
        typer.Option(
            "--cost", help="Also print each model's trial count, device and trial wall time."
        ),
    ] = False,
    claims: Annotated[
        bool,
        typer.Option(
            "--claims",
            help="Also print the paper's claims: paired differences of its model pairs, verdicts.",
        ),
    ] = False,
    publish: Annotated[
        Path | None,
        typer.Option(
            help="Also write tables, comparisons, cost, per-trial CSV, settings, plots and the "
            "trial records to this folder (docs; restoring its trials/ lets train-all continue)."
        ),
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(help="Also draw the paper's claims as a forest plot into this PNG file."),
    ] = None,
    runs_plot: Annotated[
        Path | None,
        typer.Option(help="Also draw every run of every model (WA per seed or fold) as a PNG."),
    ] = None,
) -> None:
    """Print the paper's Table 1 and Table 2 with our results beside the paper's numbers.

    With --compare, then every other model against that one, paired by seed (by held-out
    speaker under loso); with --claims, the paper's claims checked the same way.
    """
    from workflows.results.summary import ResultsError, summarize

    try:
        messages = summarize(
            runs,
            format.value,
            compare=tuple(compare or ()),
            claims=claims,
            cost=cost,
            publish_to=publish,
            plots=plots,
            claims_plot=plot,
            runs_plot=runs_plot,
        )
    except ResultsError as err:
        fail(str(err))
    for message in messages:
        typer.echo(message.text, err=message.note)


@app.command()
def fuse(
    runs: Annotated[str, typer.Argument(help="RUNS holding the test trials of both models.")],
    models: Annotated[
        str,
        typer.Option(help="NETWORK,OTHER: the two models fused, e.g. att-Res+,openSMILE-linear."),
    ],
    validation: Annotated[
        str,
        typer.Option(
            help="RUNS of the same models trained with --validation-speaker (loso) or "
            "--validation (paper): each fold's weight is chosen there, never on a test row."
        ),
    ],
) -> None:
    """Late fusion: w * NETWORK + (1 - w) * OTHER class probabilities, from the trials' saved
    predictions, w chosen per fold on validation trials; the fused trials join RUNS."""
    from workflows.results.fusion import FusionError, fuse_runs

    names = [m.strip() for m in models.split(",") if m.strip()]
    if len(names) != 2:
        fail(f"--models takes two models, NETWORK,OTHER; got {models!r}")
    try:
        fused = fuse_runs(runs, validation, names[0], names[1])
    except (FusionError, ValueError) as err:
        fail(str(err))
    for r in fused.records:
        assert r.fusion is not None
        w = r.fusion["weight"]
        validated = r.fusion["validation_ua"][str(w)]
        typer.echo(
            f"{r.model} {r.protocol} seed {r.seed} fold {r.fold}: weight {w:g} on "
            f"{r.fusion['models'][0]} (validation UA {100 * validated:.1f} %), "
            f"test UA {100 * r.ua:.1f} %"
        )
    for trial in fused.unvalidated:
        typer.echo(f"fuse: {trial} left out: no validation trials of both models for it")
    for trial in fused.unpaired:
        typer.echo(f"fuse: {trial} left out: {names[1]} has no trial on its rows")
    typer.echo(f"fuse: {len(fused.records)} fused trials written to {runs}/trials")


class PredictFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


ModelOption = Annotated[str, typer.Option("--model", help="Model name, e.g. att-Res.")]
SpeakerOption = Annotated[
    str | None,
    typer.Option(
        help="Who speaks in every file (needed by models that scale each speaker by their own "
        "statistics, such as att-Res+)."
    ),
]
SpeakerManifest = Annotated[
    Path | None,
    typer.Option(
        "--manifest", help="CSV with path, speaker (paths relative to the CSV): who speaks where."
    ),
]


def speakers_of(speaker: str | None, manifest: Path | None, command: str):
    """The ``Speakers`` of --speaker / --manifest (one at most)."""
    from workflows.use.load import Speakers, UseError

    if speaker is not None and manifest is not None:
        fail(f"{command}: give --speaker or --manifest, not both")
    try:
        return Speakers.from_manifest(manifest) if manifest else Speakers(name=speaker)
    except UseError as err:
        fail(f"{command}: {err}")


AudioArgument = Annotated[
    list[Path], typer.Argument(help="Audio files, or folders searched for .wav/.flac/.ogg.")
]


@app.command()
def predict(
    runs: Annotated[str, typer.Argument(help="RUNS folder from `train-all`.")],
    audio: AudioArgument,
    model: ModelOption,
    format: Annotated[
        PredictFormat, typer.Option("--format", help="Output format.")
    ] = PredictFormat.table,
    speaker: SpeakerOption = None,
    manifest: SpeakerManifest = None,
) -> None:
    """Predict the emotion of recordings: the mean over every trial of the model in RUNS."""
    from workflows.use.load import UseError
    from workflows.use.predict import predict_files, render_predictions

    speakers = speakers_of(speaker, manifest, "predict")
    try:
        result = predict_files(runs, model, audio, speakers)
    except UseError as err:
        fail(f"predict: {err}")
    typer.echo(
        f"predict: {result.model}, {result.scores} averaged over {len(result.trials)} trials",
        err=True,
    )
    for note in result.notes:
        typer.echo(f"predict: warning: {note}", err=True)
    typer.echo(render_predictions(result, format.value), nl=False)
    for item in result.failed:
        typer.echo(f"predict: failed {item.path}: {item.error}", err=True)
    if result.failed:
        raise typer.Exit(code=1)


@app.command()
def export(
    runs: Annotated[str, typer.Argument(help="RUNS folder from `train-all`.")],
    model: ModelOption,
    seed: Annotated[int, typer.Option(help="Seed of the trial to export.")],
    out: Annotated[Path, typer.Option("--out", help="ONNX file to write (sidecar: .json).")],
    fold: Annotated[
        int | None, typer.Option(help="Fold of the trial, when the protocol has several.")
    ] = None,
) -> None:
    """Export one trained network as ONNX (standardized spectrogram in, probabilities out)."""
    from workflows.use.export import export_onnx
    from workflows.use.load import UseError

    try:
        exported = export_onnx(runs, model, seed, out, fold)
    except UseError as err:
        fail(f"export: {err}")
    for warning in exported.warnings:
        typer.echo(f"export: warning: {warning}", err=True)
    typer.echo(f"export: {exported.trial} -> {exported.onnx} (settings: {exported.sidecar})")


@app.command()
def explain(
    runs: Annotated[str, typer.Argument(help="RUNS folder from `train-all`.")],
    audio: AudioArgument,
    model: ModelOption,
    out: Annotated[Path, typer.Option("--out", help="Folder for one PNG per recording.")],
    seed: Annotated[
        int | None, typer.Option(help="Seed of the trial to show; default: the first trial.")
    ] = None,
    speaker: SpeakerOption = None,
    manifest: SpeakerManifest = None,
) -> None:
    """Draw an att-Res model's spatial attention maps over each recording's spectrogram."""
    from workflows.use.explain import explain_files
    from workflows.use.load import UseError

    speakers = speakers_of(speaker, manifest, "explain")
    try:
        explained = explain_files(runs, model, audio, out, seed, speakers)
    except UseError as err:
        fail(f"explain: {err}")
    for note in explained.notes:
        typer.echo(f"explain: warning: {note}", err=True)
    trial, results = explained.trial, explained.files
    for item in results:
        if item.error:
            typer.echo(f"explain: failed {item.path}: {item.error}", err=True)
        else:
            typer.echo(f"{item.path}: predicted {item.predicted} -> {item.png}")
    typer.echo(f"explain: {len(results)} recordings, attention of trial {trial}", err=True)
    if any(item.error for item in results):
        raise typer.Exit(code=1)


@app.command()
def report(
    runs: Annotated[str, typer.Argument(help="RUNS folder from `train-all`.")],
    out: Annotated[Path, typer.Option("--out", help="HTML file to write.")] = Path("report.html"),
    attention: Annotated[
        int, typer.Option(min=0, help="Test spectrograms to show attention maps for.")
    ] = 3,
) -> None:
    """Write the results of RUNS as one self-contained HTML page (tables, plots, attention)."""
    from workflows.results.report import ReportError, build_report

    try:
        path = build_report(runs, out, attention)
    except ReportError as err:
        fail(f"report: {err}")
    typer.echo(f"report: {path}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for corpus, features, runs and tables.")] = Path(
        "attres-demo"
    ),
    speakers: Annotated[int, typer.Option(min=2, help="Synthetic speakers.")] = 4,
    utterances: Annotated[int, typer.Option(min=1, help="Sentences per speaker.")] = 10,
    image_size: Annotated[
        int,
        typer.Option(
            min=16,
            help="Spectrogram side (paper: 128); 64 gives att-Res's last attention 2x2 positions.",
        ),
    ] = 64,
    epochs: Annotated[int, typer.Option(min=1, help="Epochs per model (paper: 25).")] = 10,
    batch_size: Annotated[
        int, typer.Option(min=2, help="Mini-batch size: small, so BatchNorm sees enough steps.")
    ] = 16,
    models: Annotated[str, typer.Option(help="Models, or 'all' (the paper's eleven).")] = "all",
    address: Address = None,
    quiet: Quiet = False,
) -> None:
    """The whole workflow on the built-in synthetic corpus: synth, featurize, train-all, tables."""
    from workflows.demo.run import run_demo

    failed = run_demo(
        out,
        speakers=speakers,
        utterances=utterances,
        image_size=image_size,
        epochs=epochs,
        batch_size=batch_size,
        models=parse_models(models),
        address=address,
        echo=typer.echo,
        display="quiet" if quiet else "auto",
    )
    if failed:
        fail(f"failed trials: {', '.join(failed)}; re-run `attres-flow demo` to retry them")


@app.command()
def check(
    corpus: Annotated[Path, typer.Argument(help="The corpus the published figures came from.")],
    published: Annotated[
        Path, typer.Option(help="Published result folder, e.g. docs/results/casia/paper.")
    ],
    model: Annotated[str, typer.Option(help="Model to re-run.")] = "att-Res",
    seed: Annotated[int, typer.Option(help="Seed to re-run.")] = 0,
    work: Annotated[Path, typer.Option(help="Folder for features and runs (resumable).")] = Path(
        "attres-check"
    ),
    address: Address = None,
    quiet: Quiet = False,
) -> None:
    """Re-run one model with one seed and compare its WA with a published table's spread."""
    from attres.models import resolve_name
    from workflows.results.check import check as run_check

    try:
        display = "quiet" if quiet else "auto"
        verdict = run_check(corpus, published, resolve_name(model), seed, work, address, display)
    except (OSError, ValueError, RuntimeError) as err:
        fail(f"check: {err}")
    typer.echo(f"check: {verdict}")
    if not verdict.within:
        raise typer.Exit(code=1)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
