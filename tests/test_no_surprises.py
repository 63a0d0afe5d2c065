"""Nothing runs by surprise, nothing trains on stale targets: what a hostile but fair user found
(issue 25), each refused in one sentence from every entry point, or made harmless.

- Folder and file names that become utterance and speaker ids, and paths in `wav.scp`.
- Files that settings name (a Kaldi alignment): checked before planning, inputs of what reads them.
- Realignment that leaves too much of a split unaligned; schema bounds said as ranges.
- A source model of another task; `outdir` where no results belong; a task's classes.
- The command line's sentences for write errors and unreadable Arrow files; all-or-none outputs.
- SLURM site settings read as text; a killed Snakemake resumed with the documented commands.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from gradual_transfer.data import timit
from gradual_transfer.data.errors import DataError
from gradual_transfer.data.kinds import KINDS
from conftest import REPO, SNAKEMAKE, TINY_DEMO, run_snakemake, tiny_config
from test_cli import cli
from test_refusals import full_disk  # noqa: F401 - a fixture
from test_speech_data import SETTINGS, make_iemocap, make_timit

MARK = "GTHOSTILEMARK"  # what the hostile names below try to create


def side_effects(*folders: Path) -> list[Path]:
    return [p for folder in folders for p in folder.rglob(f"*{MARK}*") if p.is_file()]


# --- utterance and speaker ids --------------------------------------------------------------

HOSTILE_NAMES = {
    "command substitution": f"MK$(touch${{IFS}}{MARK})9",
    "second command": f"MK;touch {MARK};OV9",
    "space": "MK OV9",
    "quote": "MK'OV9",
}


@pytest.mark.parametrize("case", sorted(HOSTILE_NAMES))
def test_a_speaker_folder_kaldi_cannot_hold_is_refused_naming_it(tmp_path, case):
    from gradual_transfer.data.frontend import export_kaldi
    from gradual_transfer.data.timit import extract as extract_timit

    root = make_timit(tmp_path / "timit")
    speaker = root / "TRAIN" / "DR2" / "MABC0"
    hostile = speaker.rename(speaker.with_name(HOSTILE_NAMES[case]))
    with pytest.raises(DataError) as caught:
        extract_timit(root, "train", tmp_path / "train.arrow", SETTINGS, bad_utterances="skip")
    message = str(caught.value)
    assert message.startswith(f"{hostile}: speaker folder name ") and "ids may hold only ASCII letters" in message
    assert not (tmp_path / "train.arrow").exists()
    result = cli("speech-features", "timit", str(tmp_path / "cli.arrow"), "--split", "train", "--root", str(root),
                 "--configfile", str(REPO / "config.yaml"), cwd=tmp_path)
    assert result.returncode == 2 and str(hostile) in result.stderr and "Traceback" not in result.stderr
    # the Kaldi export reads the corpus's ids too (for wav.scp): the same sentence
    extract_timit(make_timit(tmp_path / "clean"), "dev", tmp_path / "dev.arrow", SETTINGS)
    with pytest.raises(DataError, match="speaker folder name"):
        export_kaldi(tmp_path / "dev.arrow", tmp_path / "kaldi", "timit", root)
    assert not (tmp_path / "kaldi").exists()
    assert side_effects(tmp_path) == []


def test_a_timit_file_name_with_a_space_is_refused_naming_the_file(tmp_path):
    from gradual_transfer.data.timit import extract as extract_timit

    root = make_timit(tmp_path / "timit")
    speaker = root / "TRAIN" / "DR1" / "FCJF0"
    for suffix in ("WAV", "PHN"):
        (speaker / f"SX37.{suffix}").rename(speaker / f"SX 37.{suffix}")
    with pytest.raises(DataError, match=r"FCJF0/SX 37.WAV: utterance id 'fcjf0_sx 37' holds characters an id "
                                        r"cannot hold \(' '\)"):
        extract_timit(root, "train", tmp_path / "train.arrow", SETTINGS)


def test_an_iemocap_utterance_name_kaldi_cannot_hold_is_refused_naming_the_line(tmp_path):
    from gradual_transfer.data.iemocap import extract as extract_iemocap

    root = make_iemocap(tmp_path / "iemocap")
    labels = root / "Session2" / "dialog" / "EmoEvaluation" / "Ses02F_impro01.txt"
    hostile = f"Ses02F_impro01_$(touch${{IFS}}{MARK})_M000"  # no whitespace: IEMOCAP's own pattern lets it in
    labels.write_text(labels.read_text().replace("Ses02F_impro01_M000", hostile))
    with pytest.raises(DataError, match=rf"{labels} line 10: utterance name '.*' holds characters an id cannot hold"):
        extract_iemocap(root, tmp_path / "all.arrow", SETTINGS, -30.0, bad_utterances="skip")
    assert side_effects(tmp_path) == []


def write_sph2pipe(folder: Path, record: Path) -> Path:
    """A stand-in for Kaldi's sph2pipe: checks that it got exactly `-f wav <one existing SPHERE
    file>`, records the path and writes the audio as WAV to stdout."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "sph2pipe"
    script.write_text(f"""#!{sys.executable}
import io, sys
import soundfile
args = sys.argv[1:]
if len(args) != 3 or args[:2] != ["-f", "wav"]:
    sys.exit(f"sph2pipe stand-in: expected -f wav FILE, got {{args!r}}")
with open(args[2], "rb") as f:
    if f.read(7) != b"NIST_1A":
        sys.exit(f"sph2pipe stand-in: {{args[2]!r}} is not a SPHERE file")
with open({str(record)!r}, "a") as f:
    f.write(args[2] + "\\n")
samples, rate = soundfile.read(args[2], dtype="int16")
out = io.BytesIO()
soundfile.write(out, samples, rate, format="WAV", subtype="PCM_16")
sys.stdout.buffer.write(out.getvalue())
""")
    script.chmod(0o755)
    return folder


ROOT_NAMES = {
    "space": "my corpora/timit",
    "command substitution": f"c$(touch${{IFS}}{MARK})x/timit",
    "second command": f"a;touch {MARK};b/timit",
    "quotes": "it's \"here\"/timit",
}


@pytest.mark.parametrize("case", sorted(ROOT_NAMES))
def test_wav_scp_read_through_sh_runs_nothing_and_gives_the_audio(tmp_path, monkeypatch, case):
    """A corpus root that a shell would split or run: every wav.scp line, read as Kaldi reads it
    (through `sh`), passes sph2pipe exactly one argument, the file, and creates nothing; kaldiio
    loads every .scp of the directory."""
    import kaldiio
    import soundfile

    from gradual_transfer.data.frontend import export_kaldi
    from gradual_transfer.data.timit import extract as extract_timit

    root = make_timit(tmp_path / ROOT_NAMES[case])
    out = root.parent / "kaldi data"  # the archives' own paths are hostile too
    extract_timit(root, "train", tmp_path / "train.arrow", SETTINGS)
    assert export_kaldi(tmp_path / "train.arrow", out, "timit", root) == 3
    record = tmp_path / "sph2pipe.txt"
    tools = write_sph2pipe(tmp_path / "tools", record)
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    workdir = tmp_path / "cwd"
    workdir.mkdir()

    expected = {u.utt_id: u.wav for u in timit.list_utterances(root, "train")}
    lines = (out / "wav.scp").read_text().splitlines()
    assert len(lines) == 3
    for line in lines:
        utt, value = line.split(" ", 1)  # Kaldi: the id, then the rest of the line
        assert value.endswith(" |")
        result = subprocess.run(["sh", "-c", value[:-1]], cwd=workdir, capture_output=True, timeout=60)
        assert result.returncode == 0, result.stderr.decode()
        samples, rate = soundfile.read(io.BytesIO(result.stdout), dtype="int16")
        assert rate == 16000 and np.array_equal(samples, soundfile.read(expected[utt], dtype="int16")[0])
    assert record.read_text().splitlines() == [str(expected[line.split(" ", 1)[0]]) for line in lines]

    wavs = kaldiio.load_scp(str(out / "wav.scp"))  # kaldiio runs each command through the shell too
    for utt, path in expected.items():
        rate, samples = wavs[utt]
        assert rate == 16000 and np.array_equal(samples, soundfile.read(path, dtype="int16")[0])
    feats = kaldiio.load_scp(str(out / "feats.scp"))
    assert sorted(feats) == sorted(expected) and all(feats[u].shape == (48, 40) for u in expected)
    assert side_effects(tmp_path, workdir) == []


def test_plain_wav_paths_with_a_space_load_with_kaldiio(tmp_path):
    import kaldiio

    from gradual_transfer.data.frontend import export_kaldi
    from gradual_transfer.data.iemocap import extract as extract_iemocap

    root = make_iemocap(tmp_path / "my corpora" / "iemocap")
    extract_iemocap(root, tmp_path / "all.arrow", SETTINGS, -30.0)
    export_kaldi(tmp_path / "all.arrow", tmp_path / "kaldi", "iemocap", root)
    wavs = kaldiio.load_scp(str(tmp_path / "kaldi" / "wav.scp"))
    assert len(wavs) == 10 and all(wavs[u][0] == 16000 for u in wavs)


# --- files that settings name: a Kaldi alignment --------------------------------------------

def alignment_config(alignment: str) -> dict:
    config = tiny_config()
    config["tasks"]["asr"].update(frame_targets="alignment", alignment=alignment)
    return config


@pytest.mark.parametrize("case", ["missing", "folder", "not an archive", "archive missing", "a command"])
def test_an_alignment_that_is_not_there_is_refused_before_planning(tmp_path, case):
    from gradual_transfer.config import ConfigError, validate_config

    name, expected = {
        "missing": ("/nonexistent/ali.scp", "/nonexistent/ali.scp: no such file"),
        "folder": ("ali", "ali: a folder"),
        "not an archive": ("ali.txt", "ali.txt: not a Kaldi alignment archive"),
        "archive missing": ("ali.scp", "ali.scp line 1: names the archive gone.ark, which does not exist"),
        "a command": ("ali.scp", "ali.scp line 1: expected '<utterance> <archive>:<offset>', not a command"),
    }[case]
    (tmp_path / "ali").mkdir()
    (tmp_path / "ali.txt").write_text("u 1 2 3\n")
    (tmp_path / "ali.scp").write_text("fcjf0_si1027 cat ali.ark |\n" if case == "a command" else
                                      "fcjf0_si1027 gone.ark:17\n")
    config = alignment_config(name)
    with pytest.raises(ConfigError) as caught:
        validate_config(config, base=tmp_path)
    assert f"tasks.asr.alignment: {expected}" in str(caught.value).replace(f"{tmp_path}/", "")
    if case != "missing":
        return
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = cli("check-config", "--configfile", str(tmp_path / "config.yaml"), cwd=tmp_path)
    assert result.returncode == 2 and expected in result.stderr and "Traceback" not in result.stderr
    result = run_snakemake(tmp_path, "-n", config=config)
    assert result.returncode != 0 and f"tasks.asr.alignment: {expected}" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "Job stats" not in result.stdout


FEATURES = [f"results/demo/features/timit/{split}.arrow" for split in ("train", "dev", "test")]


@pytest.fixture(scope="module")
def aligned_run(tmp_path_factory):
    """TIMIT's features extracted with `frame_targets: alignment` from a Kaldi script file and
    its archive (made of the thirds targets, so that every utterance has one)."""
    from gradual_transfer.demo import generate_corpus
    from gradual_transfer.data.timit import extract as extract_timit
    from gradual_transfer.data.arrow import SpeechFeatures
    from gradual_transfer.io import write_ark_scp

    workdir = tmp_path_factory.mktemp("aligned")
    generate_corpus("timit", workdir / "data" / "timit", TINY_DEMO["timit"], 0)
    targets = {}
    for split in ("train", "dev", "test"):
        extract_timit(workdir / "data" / "timit", split, workdir / f"{split}.arrow", SETTINGS)
        thirds = SpeechFeatures(workdir / f"{split}.arrow")
        targets.update({u: thirds.targets(r).astype(np.int32) for r, u in enumerate(thirds.utt_ids)})
    write_ark_scp(sorted(targets.items()), workdir / "kaldi" / "ali.ark", workdir / "kaldi" / "ali.scp")
    config = alignment_config("kaldi/ali.scp")
    config["datasets"]["timit"]["root"] = "data/timit"
    del config["demo"]["timit"]
    result = run_snakemake(workdir, "--cores", "2", *FEATURES, config=config, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir, config


def test_replacing_the_alignment_or_its_archive_re_extracts_timit(aligned_run):
    from test_reruns import replaced
    from test_workflow import planned_jobs

    workdir, config = aligned_run

    def plan():
        result = run_snakemake(workdir, "-n", *FEATURES, config=config)
        assert result.returncode == 0, result.stderr[-3000:]
        return planned_jobs(result.stdout)

    assert plan() == {}
    for name in ("ali.scp", "ali.ark"):
        with replaced(workdir / "kaldi" / name):
            assert plan() == {"asr_features": 3}, name


def test_a_finished_run_whose_alignment_went_missing_is_refused_before_planning(aligned_run, tmp_path):
    workdir, config = aligned_run
    shutil.move(workdir / "kaldi" / "ali.ark", tmp_path / "ali.ark")
    try:
        result = run_snakemake(workdir, "-n", config=config)
        assert result.returncode != 0 and "Job stats" not in result.stdout
        assert (f"tasks.asr.alignment: kaldi/ali.scp line 1: names the archive {workdir}/kaldi/ali.ark, which does "
                f"not exist") in result.stdout + result.stderr
    finally:
        shutil.move(tmp_path / "ali.ark", workdir / "kaldi" / "ali.ark")


# --- realignment that leaves a split unaligned; schema ranges said as ranges ----------------

def test_a_realignment_leaving_more_than_one_percent_unaligned_is_refused():
    from gradual_transfer.realign import MAX_NOT_ALIGNED, check_aligned_share

    assert MAX_NOT_ALIGNED == 0.01  # README, "TIMIT's state targets"
    check_aligned_share({"not_aligned": 1, "utterances": 100}, "train.arrow", 3)
    check_aligned_share({"not_aligned": 0, "utterances": 4}, "train.arrow", 3)
    with pytest.raises(DataError, match=r"^train.arrow: 2 of 100 utterances \(2%\) could not be aligned within ± 1 "
                                        r"frames of their labelled phone boundaries .* at most 1% may. Widen "
                                        r"tasks.asr.realign_window \(now 1;"):
        check_aligned_share({"not_aligned": 2, "utterances": 100}, "train.arrow", 1)
    with pytest.raises(DataError, match=r"90 of 128 utterances \(70%\) could not be aligned through their reference "
                                        r"phones .*tasks.asr.frame_targets: thirds"):
        check_aligned_share({"not_aligned": 90, "utterances": 128}, "train.arrow", None)


def test_realign_window_1_on_the_tiny_run_is_refused_with_the_counts(tiny_results, tmp_path):
    """The demo's `realign_window: 1` left 90 of 128 training utterances on their old targets,
    and the job succeeded; now the job stops, saying how many and what to change."""
    from gradual_transfer.realign import realign

    out, config, _ = tiny_results
    timit_dir = out / "features" / "timit"
    splits = {split: str(timit_dir / f"{split}.arrow") for split in ("train", "dev")}
    with pytest.raises(DataError, match=r"train.arrow: \d+ of \d+ utterances \(\d+%\) could not be aligned within "
                                        r"± 1 frames .* Widen tasks.asr.realign_window \(now 1"):
        realign(model=out / "models" / "model_a_demo" / "realign" / "pass1" / "model.pt", current=splits,
                labelled=splits, stats=timit_dir / "stats" / "train.json", hmm_file=timit_dir / "hmm.json",
                outputs={s: {"features": tmp_path / f"{s}.arrow", "ali": tmp_path / f"ali_{s}.ark",
                             "ali_scp": tmp_path / f"ali_{s}.scp"} for s in splits},
                report=tmp_path / "report.json", acoustic_scale=0.1, self_loop_scale=0.1, transition_scale=1.0,
                window=1,
                context=config["features"]["context"], runtime=config["runtime"])
    assert not (tmp_path / "train.arrow").exists() and not (tmp_path / "report.json").exists()


RANGES = {
    # key path, value, the sentence
    "realign_window 0": (("tasks", "asr", "realign_window"), 0,
                         "tasks.asr.realign_window: 0 is not allowed; write null or an integer from 1 to 2147483647."),
    "seed 2e13": (("tasks", "cifar10", "training", "seed"), 20000000000000,
                  "tasks.cifar10.training.seed: 20000000000000 is out of range; write an integer from 0 to 4294967295."),
    "seed '2e13' (YAML's 2e13)": (("tasks", "cifar10", "training", "seed"), "2e13",
                                  "tasks.cifar10.training.seed: '2e13' is a string, not an integer. Write 20000000000000."),
    "epochs 2.0": (("tasks", "svhn", "training", "epochs"), 2.0,
                   "tasks.svhn.training.epochs: 2.0 is not an integer (it has a decimal point or an exponent). Write 2."),
    "study seed 2^32": (("experiments", "images", "seeds"), [0, 2**32],
                        "experiments.images.seeds.1: 4294967296 is out of range; write an integer from 0 to 4294967295."),
    "momentum 1.5": (("tasks", "ser", "training", "optimizer", "momentum"), 1.5,
                     "tasks.ser.training.optimizer.momentum: 1.5 is out of range; write a number ≥ 0 and < 1."),
    "realign_with 3": (("tasks", "asr", "realign_with"), 3,
                       "tasks.asr.realign_with: 3 is not allowed; write null or a string."),
}


@pytest.mark.parametrize("case", sorted(RANGES))
def test_schema_bounds_are_sentences_that_say_the_range(paper_config, case):
    from gradual_transfer.config import ConfigError, validate_config

    keys, value, sentence = RANGES[case]
    entry = paper_config
    for key in keys[:-1]:
        entry = entry[key]
    entry[keys[-1]] = value
    with pytest.raises(ConfigError) as caught:
        validate_config(paper_config, check_data=False)
    assert f"  - {sentence}" in str(caught.value)


def test_every_integer_of_the_schema_has_an_upper_bound():
    from gradual_transfer.config import SCHEMA_PATH, load_yaml

    schema = load_yaml(SCHEMA_PATH)
    unbounded = []

    def walk(node, where):
        if isinstance(node, dict):
            if node.get("type") == "integer" and "maximum" not in node and "enum" not in node:
                unbounded.append(where)
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{where}/{index}")

    walk(schema, "")
    assert unbounded == []
    seed = schema["$defs"]["seed"]
    # train._epoch_generator seeds with (recipe seed + study seed) × 1,000,003 + epoch
    assert seed["maximum"] == 2**32 - 1 and (2 * seed["maximum"]) * 1_000_003 + 10**6 < 2**64


# --- outdir ----------------------------------------------------------------------------------

@pytest.mark.parametrize("outdir", ["/", "//", "/usr", "/usr/local/results", "/etc/gt", "/home", "/tmp", "/var",
                                    "/proc/self"])
def test_outdir_in_a_system_or_shared_folder_is_refused(paper_config, outdir):
    from gradual_transfer.config import ConfigError, validate_config

    paper_config["outdir"] = outdir
    with pytest.raises(ConfigError, match=rf"  - outdir: {re.escape(outdir)}.* (holds other files than this "
                                          rf"workflow's|which holds the system's own files)"):
        validate_config(paper_config, check_data=False)


def test_outdir_of_ones_own_passes_and_a_file_is_refused(paper_config, tmp_path):
    from gradual_transfer.config import ConfigError, validate_config

    for fine in ("results", str(tmp_path / "results"), "/tmp/someone/results", "/home/someone/results"):
        paper_config["outdir"] = fine
        validate_config(paper_config, base=tmp_path, check_data=False)
    (tmp_path / "results.txt").write_text("a file")
    paper_config["outdir"] = "results.txt"
    with pytest.raises(ConfigError, match=r"  - outdir: results.txt is a file, not a folder"):
        validate_config(paper_config, base=tmp_path, check_data=False)


def test_outdir_slash_is_refused_by_the_cli_and_by_snakemake_before_anything_is_written(tmp_path):
    config = tiny_config()
    config["outdir"] = "/"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = cli("check-config", "--configfile", str(tmp_path / "config.yaml"), cwd=tmp_path)
    assert result.returncode == 2 and "outdir: / is a folder that holds" in result.stderr
    assert "Traceback" not in result.stderr
    made = {p for p in ("/corpora", "/logs", "/benchmarks", "/.gradual-transfer.lock") if os.path.lexists(p)}
    result = run_snakemake(tmp_path, "--cores", "1", config=config)
    assert result.returncode != 0 and "outdir: / is a folder that holds" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert {p for p in ("/corpora", "/logs", "/benchmarks", "/.gradual-transfer.lock") if os.path.lexists(p)} == made


# --- the command line: source models, classes, write errors, unreadable Arrow files -----------

@pytest.fixture(scope="module")
def cifar10_data(tmp_path_factory):
    """Prepared tiny CIFAR-10 splits, the tiny config, and model files of known identity (made
    by `save_model`, untrained: only their identity is read before they would be trained)."""
    from gradual_transfer.checkpoints import save_model
    from gradual_transfer.data.cifar_svhn import prepare as prepare_images
    from gradual_transfer.demo import generate_corpus
    from gradual_transfer.architectures import network
    from gradual_transfer.grid import Job
    from gradual_transfer.models import build_model

    folder = tmp_path_factory.mktemp("cifar10")
    generate_corpus("cifar10", folder / "corpus", TINY_DEMO["cifar10"], 0)
    prepare_images("cifar10", folder / "corpus", folder / "data", validation=10, verify_md5=False)
    config = tiny_config()
    (folder / "tiny.yaml").write_text(yaml.safe_dump(config))
    arch = network(config["architectures"]["densenet_demo"])
    for name, job in {"primary": Job("images", "densenet_demo", "cifar10", "cifar10"),
                      "transfer": Job("images", "densenet_demo", "cifar10", "svhn", lc=3)}.items():
        save_model(folder / f"{name}.pt", build_model(arch, 10, [3, 32, 32]), arch_name="densenet_demo", arch=arch,
                   num_classes=10, input_shape=[3, 32, 32], meta=job.meta())
    return folder


def train_image(folder: Path, *args: str, config: Path | None = None) -> subprocess.CompletedProcess:
    return cli("train-image", "--arch", "densenet_demo", "--data-dir", str(folder / "data"), *args,
               "--configfile", str(config or folder / "tiny.yaml"), cwd=folder)


@pytest.mark.parametrize("source, task, found", [
    ("primary", "svhn", "is the primary model of 'cifar10', not a primary model of 'svhn'"),
    ("transfer", "cifar10", "is a transfer model (cifar10 → svhn, l_c = 3), not a primary model of 'cifar10'"),
])
def test_train_image_refuses_a_source_model_that_is_not_a_primary_of_the_task(cifar10_data, tmp_path, source, task,
                                                                             found):
    result = train_image(cifar10_data, "--task", task, "--target", "cifar10", "--source-model",
                         str(cifar10_data / f"{source}.pt"), "--lc", "3", "--out-dir", str(tmp_path / "out"))
    assert result.returncode == 2 and f"{cifar10_data / source}.pt: {found}" in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and not (tmp_path / "out" / "model.pt").exists()


def test_a_tasks_classes_are_checked_against_the_prepared_labels_before_training(cifar10_data, tmp_path):
    from gradual_transfer.data.images import ImageArrays

    assert ImageArrays(cifar10_data / "data" / "train.arrow").labels.max() >= 5
    config = tiny_config()
    config["tasks"]["cifar10"]["classes"] = 5
    (tmp_path / "five.yaml").write_text(yaml.safe_dump(config))
    result = train_image(cifar10_data, "--task", "cifar10", "--out-dir", str(tmp_path / "out"),
                         config=tmp_path / "five.yaml")
    # the config check knows CIFAR-10's classes: refused before any data is read
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "tasks.cifar10.classes: 5, but cifar10 has 10 classes; write classes: 10." in result.stderr
    # and the job's own check of the prepared labels, for what the config cannot know
    from gradual_transfer.data.errors import DataError
    from gradual_transfer.experiment import check_labels
    from gradual_transfer.tasks import images

    data = cifar10_data / "data"
    sources = images.sources(KINDS["cifar10"], {}, {**{split: str(data / f"{split}.arrow") for split in images.SPLITS},
                                                    "stats": str(data / "stats.json")})
    with pytest.raises(DataError) as refused:
        check_labels(sources, 5, "cifar10")
    assert re.search(rf"{data}/\w+.arrow: holds label \d, but tasks.cifar10.classes is 5 \(labels 0..4\). Set "
                     rf"tasks.cifar10.classes to the number of classes of its dataset \(at least \d+\)",
                     str(refused.value)), str(refused.value)
    assert not (tmp_path / "out" / "model.pt").exists() and not (tmp_path / "out" / "resume").exists()


def test_truncated_arrow_inputs_are_named_by_every_command(cifar10_data, tmp_path):
    from gradual_transfer.data.timit import extract as extract_timit

    data = tmp_path / "data"
    shutil.copytree(cifar10_data / "data", data)
    (data / "train.arrow").write_bytes((data / "train.arrow").read_bytes()[:5000])
    result = cli("train-image", "--arch", "densenet_demo", "--task", "cifar10", "--data-dir", str(data), "--out-dir",
                 str(tmp_path / "out"), "--configfile", str(cifar10_data / "tiny.yaml"), cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{data / 'train.arrow'}: not a readable Arrow file" in result.stderr, result.stderr[-2000:]

    extract_timit(make_timit(tmp_path / "timit"), "train", tmp_path / "train.arrow", SETTINGS)
    (tmp_path / "train.arrow").write_bytes((tmp_path / "train.arrow").read_bytes()[:-100])
    for command in (["feature-stats", str(tmp_path / "train.arrow"), str(tmp_path / "stats.json")],
                    ["export-kaldi", str(tmp_path / "train.arrow"), str(tmp_path / "kaldi")]):
        result = cli(*command, cwd=tmp_path)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
        assert f"{tmp_path / 'train.arrow'}: not a readable Arrow file" in result.stderr
    assert not (tmp_path / "stats.json").exists() and not (tmp_path / "kaldi").exists()


def prepare_images_cli(folder: Path, out: Path) -> subprocess.CompletedProcess:
    return cli("prepare-images", "cifar10", str(folder / "corpus"), str(out), "--configfile", str(folder / "tiny.yaml"),
               cwd=folder)


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder nobody may write in: read-only for its owner, or (as root, whom permissions do
    not stop) a read-only file system."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=16m", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_write_errors_from_the_command_line_are_one_sentence_and_leave_nothing(cifar10_data, read_only_folder,
                                                                              full_disk):  # noqa: F811
    result = prepare_images_cli(cifar10_data, read_only_folder / "data")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert re.search(rf"{read_only_folder / 'data'}(/train.arrow)?: not written \((Read-only file system|Permission "
                     rf"denied)\)", result.stderr), result.stderr
    result = prepare_images_cli(cifar10_data, full_disk / "data")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert f"{full_disk / 'data'}/train.arrow: not written, the disk is full" in result.stderr
    assert list(full_disk.iterdir()) == []  # nor the folder made for them


def test_prepare_images_leaves_all_of_its_outputs_or_none(cifar10_data, tmp_path):
    out = tmp_path / "data"
    (out / "test.arrow").mkdir(parents=True)  # the last split cannot be put in place
    (out / "test.arrow" / "keep").write_text("someone's")
    result = prepare_images_cli(cifar10_data, out)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert (f"{out / 'test.arrow'}: not written (Is a directory); none of train.arrow, validation.arrow, test.arrow, "
            f"stats.json was kept.") in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["test.arrow"]
    shutil.rmtree(out / "test.arrow")
    assert prepare_images_cli(cifar10_data, out).returncode == 0
    assert sorted(p.name for p in out.iterdir()) == ["stats.json", "test.arrow", "train.arrow", "validation.arrow"]


def test_all_or_none_keeps_nothing_of_a_block_that_fails(tmp_path):
    from gradual_transfer.io import all_or_none, write_json, write_text

    with pytest.raises(RuntimeError, match="third output failed"):
        with all_or_none():
            write_text(tmp_path / "a.txt", "first")
            write_json(tmp_path / "b.json", {"second": 2})
            assert not (tmp_path / "a.txt").exists()  # held back until the block ends
            raise RuntimeError("third output failed")
    assert list(tmp_path.iterdir()) == []
    with all_or_none():
        write_text(tmp_path / "a.txt", "first")
        with all_or_none():  # an inner block's outputs wait for the outer one
            write_text(tmp_path / "c.txt", "inner")
        assert not (tmp_path / "c.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "c.txt"]


# --- SLURM site settings are text ------------------------------------------------------------

def test_slurm_site_settings_reach_sbatch_verbatim_and_run_nothing(tmp_path):
    """profiles/slurm fills the partition and account in from the environment. Snakemake reads a
    resource value as Python (after expanding $VARIABLES): a value with quotes, spaces, `$` and
    Python in it must reach sbatch exactly as written, in a dry run and in a submission, and
    nothing it says may run. (A stand-in sbatch records its arguments and refuses the job.)"""
    gpu_partition = f"__import__('os').system('touch {MARK}5')"  # Python that Snakemake ran in a dry run
    partition = f"cpu \"x\" 'y' $(touch {MARK}1) ; __import__('os').system('touch {MARK}2') $HOME ${{HOME}} ~"
    account = f"acct'$(touch${{IFS}}{MARK}3)\"__import__('os').system('touch{MARK}4')"  # no spaces: the plugin
    # splits an account at spaces and commas (several accounts)
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "config.yaml").write_text(yaml.safe_dump(tiny_config(), sort_keys=False))
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "sbatch").write_text(f"#!{sys.executable}\nimport json, sys\n"
                                  f"open({str(tmp_path / 'sbatch.jsonl')!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
                                  f"sys.exit(1)\n")
    for name in ("sacctmgr", "sshare", "sinfo", "squeue", "sacct", "scancel", "scontrol"):
        (tools / name).write_text("#!/bin/sh\nexit 0\n")
    for tool in tools.iterdir():
        tool.chmod(0o755)
    environment = {**{k: v for k, v in os.environ.items() if not k.startswith(("GRADUAL_TRANSFER_", "SLURM_"))},
                   "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}", "GRADUAL_TRANSFER_GPU_PARTITION": gpu_partition,
                   "GRADUAL_TRANSFER_CPU_PARTITION": partition, "GRADUAL_TRANSFER_SLURM_ACCOUNT": account}

    def snakemake(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--profile",
                               str(REPO / "profiles" / "slurm"), *args], capture_output=True, text=True, cwd=workdir,
                              env=environment, timeout=600)

    planned = snakemake("-n")
    assert planned.returncode == 0, planned.stderr[-3000:]
    for rule, expected in (("image_primary", gpu_partition), ("asr_primary", gpu_partition),
                           ("asr_features", partition)):
        resources = re.search(rf"^rule {rule}:\n(?:.*\n)*?\s+resources: (.*)$", planned.stdout, re.M).group(1)
        assert f"slurm_partition={expected}" in resources and f"slurm_account={account}" in resources, rule
    assert side_effects(tmp_path) == []
    submitted = snakemake("--jobs", "1", "--retries", "0", "results/demo/corpora/cifar10")
    assert submitted.returncode != 0  # the stand-in refused it
    [arguments] = [json.loads(line) for line in (tmp_path / "sbatch.jsonl").read_text().splitlines()]
    assert arguments[arguments.index("-p") + 1] == partition  # a CPU job
    assert arguments[arguments.index("-A") + 1] == account
    assert side_effects(tmp_path) == [] and side_effects(REPO) == []


# --- a killed Snakemake resumes with the documented commands ---------------------------------

def test_a_killed_snakemake_is_resumed_by_unlock_and_the_same_command(tmp_path):
    """kill -9 of Snakemake alone (a closed terminal, an OOM kill) while a job runs: the job
    goes on and finishes on its own, but Snakemake's lock and the job's incomplete marker stay.
    The README's two commands, `snakemake --unlock` and then the same command, run the job
    again and complete the run: `rerun-incomplete` is in profiles/default, read by every
    profile (without it, the second command stops and asks for --rerun-incomplete)."""
    from test_resume import LOG, MODEL, training_processes, wait_for

    workdir = tmp_path / "work"
    workdir.mkdir()
    config = tiny_config()
    config["tasks"]["cifar10"]["training"]["epochs"] = 3
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    command = [str(SNAKEMAKE), "--cores", "2", "-s", str(REPO / "Snakefile"), "-d", str(workdir), MODEL]  # plain
    prepared = subprocess.run(command[:-1] + ["results/demo/data/cifar10/train.arrow"], capture_output=True, text=True,
                              timeout=900, cwd=workdir)
    assert prepared.returncode == 0, prepared.stderr[-3000:]
    log = workdir / LOG
    run = subprocess.Popen(command, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    try:
        job = wait_for(lambda: log.exists() and training_processes(workdir), 600, "the training job to start")
    finally:
        os.kill(run.pid, signal.SIGKILL)  # Snakemake only
        run.wait()
    assert not (workdir / MODEL).exists(), "the job finished before Snakemake was killed"
    wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in job), 600, "the orphaned job to finish")
    assert (workdir / MODEL).exists() and list((workdir / ".snakemake" / "incomplete").iterdir())

    again = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=workdir)
    assert again.returncode != 0 and "--unlock" in again.stdout + again.stderr  # Snakemake's lock outlived it
    unlocked = subprocess.run(command + ["--unlock"], capture_output=True, text=True, timeout=300, cwd=workdir)
    assert unlocked.returncode == 0, unlocked.stderr[-3000:]
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=workdir)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert "rule image_primary:" in rerun.stdout + rerun.stderr  # the incomplete job ran again
    planned = subprocess.run(command + ["-n"], capture_output=True, text=True, timeout=300, cwd=workdir)
    assert "Nothing to be done" in planned.stdout + planned.stderr
