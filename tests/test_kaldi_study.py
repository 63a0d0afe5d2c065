"""A speech study of one's own from config alone: two Kaldi data directories (one read through
wav files and a command, one through segments of longer recordings), utterance classification
with leave-one-speaker-out folds, run end to end through Snakemake; the data directory checked as
Kaldi's validate_data_dir.sh checks one; commands refused unless allowed."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile

from conftest import REPO, load_yaml, own_study_base, run_snakemake, unshared

RATE = 16000
SPEAKERS = ["spkA", "spkB", "spkC", "spkD"]


def tone(label: int, rng, seconds: float = 0.5) -> np.ndarray:
    """Silence, a tone whose pitch is the class (with noise), silence: int16 at 16 kHz."""
    t = np.arange(int(seconds * RATE)) / RATE
    voiced = 8000 * np.sin(2 * np.pi * (300 + 500 * label) * t) + rng.normal(0, 300, len(t))
    pause = rng.normal(0, 20, RATE // 10)
    return np.concatenate([pause, voiced, pause]).astype(np.int16)


def write_kaldi_dir(root, labels: list[str], per_speaker: int, seed: int, segments: bool = False,
                    command_for: str | None = None) -> None:
    """A Kaldi data directory: utterances `<speaker>-<i>` of `per_speaker` per speaker, class
    i mod len(labels). With `segments`, one recording per speaker holds them all; with
    `command_for`, that utterance's wav.scp entry is a command (`cat file |`)."""
    rng = np.random.default_rng(seed)
    (root / "wav").mkdir(parents=True)
    wav, utt2spk, utt2label, segment_lines = [], [], [], []
    for speaker in SPEAKERS:
        pieces, start = [], 0.0
        for i in range(per_speaker):
            utt = f"{speaker}-{i:02d}"
            samples = tone(i % len(labels), rng)
            utt2spk.append(f"{utt} {speaker}")
            utt2label.append(f"{utt} {labels[i % len(labels)]}")
            if segments:
                pieces.append(samples)
                segment_lines.append(f"{utt} {speaker}-rec {start:.3f} {start + len(samples) / RATE:.3f}")
                start += len(samples) / RATE
            else:
                path = root / "wav" / f"{utt}.wav"
                soundfile.write(path, samples, RATE, subtype="PCM_16")
                wav.append(f"{utt} cat {path} |" if utt == command_for else f"{utt} {path}")
        if segments:
            path = root / "wav" / f"{speaker}.wav"
            soundfile.write(path, np.concatenate(pieces), RATE, subtype="PCM_16")
            wav.append(f"{speaker}-rec {path}")
    for name, lines in (("wav.scp", wav), ("utt2spk", utt2spk), ("utt2label", utt2label), ("segments", segment_lines)):
        if lines:
            (root / name).write_text("".join(f"{line}\n" for line in sorted(lines, key=str.encode)))
    spk2utt = [f"{s} " + " ".join(u for u in (line.split()[0] for line in sorted(utt2spk)) if u.startswith(s + "-"))
               for s in SPEAKERS]
    (root / "spk2utt").write_text("".join(f"{line}\n" for line in spk2utt))


def recipe(epochs: int, **extra) -> dict:
    return {"batch_size": 64, "epochs": epochs, "seed": 0, "early_stopping_patience": 0,
            "optimizer": {"lr": 0.01, "momentum": 0.9, "nesterov": False, "weight_decay": 0.0},
            "schedule": {"kind": "plateau", "factor": 0.5, "patience": 0}, **extra}


def kaldi_study_config(data) -> dict:
    """config.yaml of the workdir: the paper's, its experiments off, a speech study `voices` on."""
    config = own_study_base("results/voices")
    config["features"]["context"] = 2
    config["datasets"]["pitch"] = {"kind": "kaldi", "root": str(data / "pitch"), "allow_commands": True}
    config["datasets"]["loudness"] = {"kind": "kaldi", "root": str(data / "loudness")}
    config["architectures"]["small_convnet"] = {
        "kind": "convnet", "conv_groups": [{"channels": [4], "first_kernel": [3, 4], "pool": True}],
        "fc_units": [16], "dropout": 0.0, "lc": [0, 2]}
    for name, classes, folds in (("pitch", 4, [1, 2]), ("loudness", 3, [1])):
        config["tasks"][name] = {"dataset": name, "classes": classes, "metric": "ue", "validation_speakers": ["spkA"],
                                 "folds": folds, "silence_threshold_db": -30.0, "training": recipe(2),
                                 "finetune": recipe(1, head_warmup_iterations=2)}
    config["experiments"]["voices"] = {"enabled": True, "tasks": ["pitch", "loudness"],
                                       "architectures": ["small_convnet"]}
    return config


@pytest.fixture(scope="module")
def kaldi_data(tmp_path_factory):
    data = tmp_path_factory.mktemp("kaldi_data")
    write_kaldi_dir(data / "pitch", ["high", "low", "mid"], per_speaker=3, seed=1, command_for="spkB-01")
    write_kaldi_dir(data / "loudness", ["a", "b"], per_speaker=2, seed=2, segments=True)
    return data


def _problems(config: dict, check_data: bool = True) -> str:
    from gradual_transfer.config import ConfigError, validate_config

    with pytest.raises(ConfigError) as refused:
        validate_config(config, check_data=check_data)
    return str(refused.value)


def test_a_speech_study_of_ones_own_runs_from_config_alone(kaldi_data, tmp_path):
    config = kaldi_study_config(kaldi_data)
    workdir = tmp_path / "work"
    result = run_snakemake(workdir, "--cores", "2", "--max-threads", "1", config=config, timeout=1200)
    assert result.returncode == 0, result.stderr[-5000:]
    out = workdir / "results" / "voices"

    assert json.loads((out / "features" / "pitch" / "classes.json").read_text()) == ["high", "low", "mid"]
    from gradual_transfer.data.arrow import SpeechFeatures

    pitch = SpeechFeatures(out / "features" / "pitch" / "all.arrow")
    assert len(pitch) == 12 and pitch.all_speakers == SPEAKERS  # the command's utterance is read too
    loudness = SpeechFeatures(out / "features" / "loudness" / "all.arrow")
    assert len(loudness) == 8  # two segments of each speaker's recording
    assert set(np.unique(loudness.frame_targets(loudness.frame_index(np.arange(8)).frames))) == {0, 1, 2}

    import pandas as pd

    table = pd.read_parquet(out / "tables" / "results.parquet")
    assert set(table["experiment"]) == {"voices"} and set(table["metric"]) == {"ue"}
    transfers = table[(table["kind"] == "transfer") & (table["split"] == "test")]
    # every target fold: pitch has folds 1 and 2, loudness fold 1; each from the source's first fold
    assert {(s, t, f) for s, t, f in zip(transfers["source"], transfers["target"], transfers["fold"])} == {
        ("loudness", "pitch", 1), ("loudness", "pitch", 2), ("pitch", "loudness", 1)}
    assert sorted(set(transfers["lc"])) == [0, 2]
    metrics = json.loads((out / "models" / "small_convnet" / "primary" / "pitch" / "fold2" / "metrics.json")
                         .read_text())
    assert 0.0 <= metrics["test"]["ue"] <= 100.0 and metrics["test"]["utterances"] == 3  # spkC's three
    assert metrics["cost"]["step_flops"] > 0
    assert (out / "figures" / "study_voices.png").stat().st_size > 0
    # the screen ran beside the grid: its estimates of a Kaldi directory's utterances are finite
    estimates = pd.read_csv(out / "tables" / "estimates.tsv", sep="\t")
    assert set(zip(estimates["source"], estimates["target"])) == {("loudness", "pitch"), ("pitch", "loudness")}
    assert np.isfinite(estimates["logme"]).all() and np.isfinite(estimates["h_score_shrinkage"]).all()

    again = run_snakemake(workdir, "-n")  # a finished study plans nothing
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Nothing to be done" in again.stdout + again.stderr, again.stdout[-3000:]

    from test_workflow import SCREENED, _plan_with

    def quieter(c):  # loudness's frame labels change: its features, its models and the transfers into or out of it
        c["tasks"]["loudness"]["silence_threshold_db"] = -20.0

    # loudness → pitch on pitch's 2 folds and pitch → loudness on its 1, each at 2 l_c values; the
    # screen's estimates and similarity of both pairs
    assert _plan_with(workdir, config, quieter) == {"kaldi_dir_features": 1, "fold_stats": 1,
                                                    "speech_study_primary": 1, "speech_study_transfer": 6,
                                                    "estimates": 2, "similarity": 2, **SCREENED, **STUDY}

    def allowed(c):  # a directory without commands reads the same with them allowed
        c["datasets"]["loudness"]["allow_commands"] = True

    assert _plan_with(workdir, config, allowed) == {}


# the tables and figures redrawn after any change of results, and the cost and curves of any training
STUDY = {"aggregate_results": 1, "transferability": 1, "figure_study": 1, "figure_transferability": 1,
         "cost_table": 1, "figure_curves": 1, "all": 1}


def test_a_command_in_wav_scp_runs_only_when_allowed(kaldi_data):
    config = kaldi_study_config(kaldi_data)
    config["datasets"]["pitch"]["allow_commands"] = False
    problems = _problems(config)
    assert "reads recording spkB-01 through a command ('cat " in problems
    assert "set datasets.pitch.allow_commands: true" in problems

    from gradual_transfer.data import kaldi_recordings
    from gradual_transfer.data.errors import DataError

    with pytest.raises(DataError, match="allow_commands: true"):
        kaldi_recordings.read_recording("touch /tmp/should-not-exist |", allow_commands=False, dataset="pitch")


def test_a_commands_files_are_inputs_of_the_extraction_when_commands_are_allowed(kaldi_data):
    from gradual_transfer.data import kaldi, kaldi_recordings

    root = kaldi_data / "pitch"
    commanded = root / "wav" / "spkB-01.wav"
    entry = {"kind": "kaldi", "allow_commands": True}
    assert commanded in kaldi.corpus_files(root, entry)
    # without allow_commands the listing is what it always was (a command is refused anyway)
    without = kaldi.corpus_files(root, {**entry, "allow_commands": False})
    assert commanded not in without and len(without) == len(kaldi.corpus_files(root, entry)) - 1
    assert kaldi_recordings.command_files(f"sox '{commanded}' -t wav - remix 1 |") == [commanded]
    assert kaldi_recordings.command_files("sph2pipe -f wav /nonexistent/x.sph |") == []


def test_replacing_a_file_a_command_reads_re_extracts(kaldi_data, tmp_path):
    from test_reruns import replaced
    from test_workflow import planned_jobs

    config = kaldi_study_config(kaldi_data)
    target = "results/voices/features/pitch/all.arrow"
    done = run_snakemake(tmp_path, "--cores", "1", target, config=config)
    assert done.returncode == 0, done.stderr[-3000:]

    def plan():
        result = run_snakemake(tmp_path, "-n", target, config=config)
        assert result.returncode == 0, result.stderr[-3000:]
        return planned_jobs(result.stdout)

    assert plan() == {}
    with replaced(kaldi_data / "pitch" / "wav" / "spkB-01.wav"):  # read by `cat <file> |` only
        assert plan() == {"kaldi_dir_features": 1}


def test_each_command_runs_once_per_extraction(tmp_path):
    """A recording read through a command, cut into segments that are not consecutive in
    utterance order: its command runs once, not once for the header and once per run of segments."""
    from gradual_transfer.data import kaldi
    from gradual_transfer.data.arrow import SpeechFeatures
    from test_speech_data import SETTINGS

    rng = np.random.default_rng(0)
    root = tmp_path / "dir"
    root.mkdir()
    for recording in ("rec1", "rec2"):
        soundfile.write(root / f"{recording}.wav", np.concatenate([tone(0, rng), tone(1, rng)]), RATE,
                        subtype="PCM_16")
    counter = tmp_path / "runs.txt"
    (tmp_path / "counted.sh").write_text(f'echo "$1" >> {counter}\ncat "$1"\n')
    (root / "wav.scp").write_text(f"rec1 sh {tmp_path / 'counted.sh'} {root / 'rec1.wav'} |\n"
                                  f"rec2 sh {tmp_path / 'counted.sh'} {root / 'rec2.wav'} |\n")
    utterances = {"spkA-1": "rec1 0.0 0.7", "spkA-2": "rec2 0.0 0.7", "spkA-3": "rec1 0.7 1.4",
                  "spkB-1": "rec2 0.7 1.4"}
    (root / "segments").write_text("".join(f"{u} {s}\n" for u, s in utterances.items()))
    (root / "utt2spk").write_text("".join(f"{u} {u[:4]}\n" for u in utterances))
    (root / "utt2label").write_text("".join(f"{u} {'ab'[i % 2]}\n" for i, u in enumerate(utterances)))
    count = kaldi.extract(root, tmp_path / "all.arrow", SETTINGS, -30.0, entry={"allow_commands": True},
                          dataset="counted")
    assert count == 4 and len(SpeechFeatures(tmp_path / "all.arrow")) == 4
    assert sorted(counter.read_text().splitlines()) == [str(root / "rec1.wav"), str(root / "rec2.wav")]


def test_the_data_directory_is_validated_as_kaldi_does(kaldi_data, tmp_path):
    from gradual_transfer.data import kaldi_tables
    from gradual_transfer.data.errors import DataError

    def copy() -> object:
        root = tmp_path / f"dir{len(list(tmp_path.iterdir()))}"
        shutil.copytree(kaldi_data / "pitch", root)
        return root

    root = copy()  # unsorted
    lines = (root / "utt2label").read_text().splitlines()
    (root / "utt2label").write_text("\n".join(reversed(lines)) + "\n")
    with pytest.raises(DataError, match="not sorted. Sort it as Kaldi does: LC_ALL=C sort utt2label"):
        kaldi_tables.read_data_dir(root)
    root = copy()  # an utterance without a label
    (root / "utt2label").write_text("\n".join((kaldi_data / "pitch" / "utt2label").read_text().splitlines()[1:]) + "\n")
    with pytest.raises(DataError, match=r"utt2label: its utterances differ from utt2spk's \(only in utt2spk: spkA-00"):
        kaldi_tables.read_data_dir(root)
    root = copy()  # spk2utt not the inverse of utt2spk
    (root / "spk2utt").write_text("spkA spkA-00\n")
    with pytest.raises(DataError, match="spk2utt: not the inverse of utt2spk"):
        kaldi_tables.read_data_dir(root)
    root = copy()  # speaker ids that do not prefix the utterance ids
    text = (root / "utt2spk").read_text().replace("spkA-00 spkA", "spkA-00 zed")
    (root / "utt2spk").write_text(text)
    (root / "spk2utt").unlink()
    with pytest.raises(DataError, match="not in sorted order when sorted first on speaker id"):
        kaldi_tables.read_data_dir(root)
    root = copy()  # a shell metacharacter in an id
    (root / "utt2label").write_text((root / "utt2label").read_text().replace(" high", " hi;gh", 1))
    with pytest.raises(DataError, match="class label 'hi;gh' holds characters an id cannot hold"):
        kaldi_tables.read_data_dir(root)


SEGMENT_DAMAGES = {  # the first line of loudness/segments is "spkA-00 spkA-rec 0.000 0.700"
    "nan end": (("0.000 0.700", "0.000 nan"), "segments line 1: segment spkA-00: start '0.000' and end 'nan' must be "
                                              "finite seconds (not nan or inf)."),
    "inf start": (("0.000 0.700", "inf 0.700"), "segments line 1: segment spkA-00: start 'inf' and end '0.700' must "
                                                "be finite seconds"),
    "negative start": (("0.000 0.700", "-1.0 0.700"), "segments line 1: segment spkA-00 starts at -1.0 s, before its "
                                                      "recording; a segment starts at 0 or later."),
    "end before start": (("0.000 0.700", "0.500 0.400"), "segments line 1: segment spkA-00 ends (0.400 s) before it "
                                                         "starts (0.500 s)"),
}


@pytest.mark.parametrize("case", sorted(SEGMENT_DAMAGES) + ["byte order mark"])
def test_segments_and_tables_are_refused_at_the_check_naming_file_and_line(kaldi_data, tmp_path, case):
    root = tmp_path / "loudness"
    shutil.copytree(kaldi_data / "loudness", root)
    if case == "byte order mark":
        (root / "utt2spk").write_bytes(b"\xef\xbb\xbf" + (root / "utt2spk").read_bytes())
        expected = f"{root / 'utt2spk'}: starts with a byte order mark"
    else:
        (old, new), expected = SEGMENT_DAMAGES[case]
        text = (root / "segments").read_text()
        assert text.startswith(f"spkA-00 spkA-rec {old}\n")
        (root / "segments").write_text(text.replace(old, new, 1))
        expected = f"{root}/{expected}"
    config = kaldi_study_config(kaldi_data)
    config["datasets"]["loudness"]["root"] = str(root)
    problems = _problems(config)
    assert f"datasets.loudness.root: {expected}" in problems and problems.count("\n  - ") == 1, problems
    if case in ("nan end", "byte order mark"):  # the command line's check says the same
        import subprocess
        import sys

        import yaml

        (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
        result = subprocess.run([sys.executable, "-m", "gradual_transfer", "check-config"], capture_output=True,
                                text=True, cwd=tmp_path, timeout=300)
        assert result.returncode == 2 and expected in result.stderr and "Traceback" not in result.stderr


def test_classes_and_folds_are_checked_before_planning(kaldi_data):
    config = kaldi_study_config(kaldi_data)
    config["tasks"]["pitch"]["classes"] = 3
    assert "names 3 classes (high, low, mid) and silence is one more; write classes: 4." in _problems(config)
    config = kaldi_study_config(kaldi_data)
    config["tasks"]["pitch"]["folds"] = [1, 4]
    assert "tasks.pitch.folds: [4] exceed the 3 folds of" in _problems(config)
    config = kaldi_study_config(kaldi_data)
    config["tasks"]["pitch"]["validation_speakers"] = ["spkZ"]
    assert "tasks.pitch.validation_speakers: ['spkZ'] are not speakers of the data directory" in _problems(config)


def test_a_speech_study_takes_speech_tasks_and_networks_only(kaldi_data):
    config = kaldi_study_config(kaldi_data)
    config["experiments"]["voices"]["architectures"] = ["densenet40"]
    assert "'densenet40' is an image network (kind densenet); a speech experiment trains convnet" in _problems(
        config, check_data=False)
    config = kaldi_study_config(kaldi_data)
    config["experiments"]["voices"]["tasks"] = ["pitch", "asr"]
    assert "task 'asr' reads timit, which belongs to the speech experiment" in _problems(config, check_data=False)
    config = kaldi_study_config(kaldi_data)
    config["experiments"]["voices"]["tasks"] = ["pitch", "cifar10"]
    assert "a study is between image tasks or between speech tasks, not both" in _problems(config, check_data=False)


def test_the_study_grid_transfers_to_every_fold_of_the_target(kaldi_data):
    from gradual_transfer.config import validate_config
    from gradual_transfer.grid import training_jobs, training_params

    config = validate_config(kaldi_study_config(kaldi_data), check_data=False)
    jobs = training_jobs(config)
    primaries = {(j.target, j.fold) for j in jobs if not j.is_transfer}
    assert primaries == {("pitch", 1), ("pitch", 2), ("loudness", 1)}
    transfers = {(j.source, j.source_fold, j.target, j.fold) for j in jobs if j.is_transfer}
    assert transfers == {("pitch", 1, "loudness", 1), ("loudness", 1, "pitch", 1), ("loudness", 1, "pitch", 2)}
    settings = training_params(config, next(j for j in jobs if j.target == "pitch"))["settings"]
    assert settings["kind"] == "kaldi" and settings["validation_speakers"] == ["spkA"] and settings["context"] == 2


def test_the_kaldi_steps_from_the_command_line(kaldi_data, tmp_path):
    import subprocess
    import sys

    import yaml

    from gradual_transfer.data.arrow import SpeechFeatures

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "gradual_transfer", *args], capture_output=True, text=True,
                              cwd=tmp_path, timeout=600)

    config = kaldi_study_config(kaldi_data)
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(config))
    result = cli("speech-features", "loudness", "out/all.arrow", "--configfile", "study.yaml")
    assert result.returncode == 0, result.stderr
    assert len(SpeechFeatures(tmp_path / "out" / "all.arrow")) == 8
    assert json.loads((tmp_path / "out" / "classes.json").read_text()) == ["a", "b"]

    config["datasets"]["pitch"]["allow_commands"] = False  # refused from the CLI as from Snakemake
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(config))
    result = cli("speech-features", "pitch", "out/pitch.arrow", "--configfile", "study.yaml")
    assert result.returncode == 2 and "set datasets.pitch.allow_commands: true" in result.stderr
    assert not (tmp_path / "out" / "pitch.arrow").exists()
    result = cli("train-image", "--arch", "small_convnet", "--task", "pitch", "--data-dir", "d", "--out-dir", "m",
                 "--configfile", "study.yaml")
    assert result.returncode == 2 and "--task pitch: a speech task; train-image trains image models" in result.stderr


def test_the_readmes_speech_study_is_a_valid_config():
    """README's `my_speech_study.yaml`, word for word, passes every check but the data's."""
    import re

    import yaml

    from gradual_transfer.config import merge, validate_config
    from gradual_transfer.grid import training_jobs

    readme = (REPO / "README.md").read_text()
    block = re.search(r"```yaml\n(# my_speech_study\.yaml.*?)```", readme, re.S).group(1)
    config = validate_config(merge(unshared(load_yaml(REPO / "config.yaml")), yaml.safe_load(block)),
                             check_data=False)
    jobs = training_jobs(config)
    assert {j.experiment for j in jobs} == {"accents_vs_gender"}
    # accents → gender at each of gender's 3 folds, gender → accents at each of accents' 4, l_c 0..5
    assert len([j for j in jobs if j.is_transfer]) == (3 + 4) * 6
    assert config["datasets"]["accents"]["allow_commands"] is False  # the schema's default


def test_a_segment_is_cut_as_kaldis_extract_segments_cuts_it():
    from gradual_transfer.data import kaldi_recordings, kaldi_tables
    from gradual_transfer.data.errors import DataError

    recording = (np.arange(2 * RATE, dtype=np.int16), RATE)  # 2 s
    segment = kaldi_tables.Utterance("r-1", "s", "a", "r", "r.wav", start=0.5, end=1.25)
    assert kaldi_recordings.utterance_samples(segment, recording, RATE).tolist() == list(range(8000, 20000))
    to_end = kaldi_tables.Utterance("r-2", "s", "a", "r", "r.wav", start=1.5, end=None)  # end -1 in segments
    assert len(kaldi_recordings.utterance_samples(to_end, recording, RATE)) == RATE // 2
    overshoot = kaldi_tables.Utterance("r-3", "s", "a", "r", "r.wav", start=1.0, end=2.4)  # within 0.5 s: clamped
    assert len(kaldi_recordings.utterance_samples(overshoot, recording, RATE)) == RATE
    beyond = kaldi_tables.Utterance("r-4", "s", "a", "r", "r.wav", start=1.0, end=3.0)
    with pytest.raises(DataError, match="segment r-4: ends at 3.0 s, beyond its recording r"):
        kaldi_recordings.utterance_samples(beyond, recording, RATE)
    with pytest.raises(DataError, match="sample rate 8000 Hz, expected 16000 Hz"):
        kaldi_recordings.utterance_samples(segment, (recording[0], 8000), RATE)
