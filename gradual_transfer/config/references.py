"""Cross-references the schema cannot express: a task naming an unknown dataset or the wrong
metric, an l_c beyond the architecture's depth, an experiment mixing image and speech tasks or
image sizes, two experiments claiming one model, SER folds outside the fold list, and the proof
that a torchvision architecture's groups tile its network. `config` has the schema's defaults."""

from __future__ import annotations

from gradual_transfer.architectures import num_groups
from gradual_transfer.data.kinds import KINDS, is_utterance_classification, kind_of, reader
from gradual_transfer.grid import SPEECH_EXPERIMENT, image_experiments


def semantic_errors(config: dict) -> list[str]:
    """Cross-references the schema cannot express. `config` has the schema's defaults."""
    problems = []
    archs, tasks = config["architectures"], config["tasks"]
    for name, arch in archs.items():
        l_h = num_groups(arch)
        bad = [lc for lc in arch["lc"] if lc > l_h]
        if bad:
            problems.append(
                f"architectures.{name}.lc: {bad} exceed L_H = {l_h}, the number of layer groups "
                f"of this architecture. Use values in 0..{l_h}."
            )
        if arch["kind"] == "densenet" and (arch["depth"] - 4) % 3:
            problems.append(
                f"architectures.{name}.depth: {arch['depth']} is not 3n + 4 (three dense blocks of "
                f"n layers plus conv0, two transitions and the classifier). Use e.g. 40 or 10."
            )
    for name, task in tasks.items():
        if task["dataset"] not in config["datasets"]:
            problems.append(
                f"tasks.{name}.dataset: {task['dataset']!r} has no entry under datasets. "
                f"Add datasets.{task['dataset']}.root."
            )
            continue
        kind = kind_of(config, task["dataset"])
        if task["metric"] != kind.metric:  # the trivial errors and figure axes are read from it
            problems.append(
                f"tasks.{name}.metric: {task['metric']!r}, but {task['dataset']} is scored with "
                f"{kind.metric!r}; write metric: {kind.metric}."
            )
        others = [o for o, t in tasks.items() if t["dataset"] == task["dataset"] and t["classes"] != task["classes"]]
        if others:
            problems.append(f"tasks.{name}.classes: {task['classes']}, but tasks.{others[0]} reads the same dataset "
                            f"({task['dataset']}) with {tasks[others[0]]['classes']}; a dataset has one set of classes.")
        if is_utterance_classification(kind):  # one feature file and one fold layout per dataset
            for key in ("validation_speakers", "silence_threshold_db"):
                differ = [o for o, t in tasks.items() if t["dataset"] == task["dataset"] and t[key] != task[key]]
                if differ:
                    problems.append(f"tasks.{name}.{key}: {task[key]}, but tasks.{differ[0]} reads the same "
                                    f"dataset ({task['dataset']}) with {tasks[differ[0]][key]}; make them agree.")
        if kind.classes is not None and task["classes"] != kind.classes:
            problems.append(f"tasks.{name}.classes: {task['classes']}, but {task['dataset']} has {kind.classes} "
                            f"classes; write classes: {kind.classes}.")
        if kind.task_schema is not None:  # what a task of this kind needs beyond the schema: its reader says
            task_errors = getattr(reader(kind), "task_errors", None)
            problems += task_errors(config, name, task) if task_errors else []
    problems += experiment_errors(config)
    for arch in config["runtime"]["cuda_by_architecture"]:
        if arch not in archs:
            problems.append(f"runtime.cuda_by_architecture.{arch}: unknown architecture; defined: {sorted(archs)}.")
    demo = config.get("demo", {})
    for dataset in demo:
        if dataset != "seed" and dataset not in config["datasets"]:
            problems.append(f"demo.{dataset}: generates a dataset that has no datasets.{dataset} entry.")
    return problems


def experiment_errors(config: dict) -> list[str]:
    """Each experiment's tasks, architectures and pairs: known and of one modality (the paper's
    speech experiment: TIMIT and IEMOCAP; any other: image tasks, or speech tasks that classify
    utterances), networks of that modality, and one experiment per model."""
    problems = []
    archs, tasks = config["architectures"], config["tasks"]
    for exp_name, exp in config["experiments"].items():
        known = [t for t in exp["tasks"] if t in tasks and tasks[t]["dataset"] in config["datasets"]]
        for t in exp["tasks"]:
            if t not in tasks:
                problems.append(f"experiments.{exp_name}.tasks: unknown task {t!r}; defined: {sorted(tasks)}.")
        kinds = {t: kind_of(config, tasks[t]["dataset"]) for t in known}
        if exp_name == SPEECH_EXPERIMENT:
            wanted = "speech"
            for t, kind in kinds.items():
                if kind.modality != "speech":
                    problems.append(f"experiments.{exp_name}.tasks: task {t!r} reads {tasks[t]['dataset']}, which "
                                    f"belongs to an image experiment (images, or one of your own).")
        else:
            wanted = kinds[known[0]].modality if known else "image"
            for t, kind in kinds.items():
                if kind.modality != wanted:
                    problems.append(f"experiments.{exp_name}.tasks: task {t!r} reads {tasks[t]['dataset']}, a "
                                    f"{kind.modality} dataset, but {known[0]!r} reads {wanted}; a study is between "
                                    f"image tasks or between speech tasks, not both.")
                elif wanted == "speech" and not is_utterance_classification(kind):
                    problems.append(f"experiments.{exp_name}.tasks: task {t!r} reads {tasks[t]['dataset']}, which "
                                    f"belongs to the speech experiment (phone recognition is decoded there only); "
                                    f"a study of your own classifies utterances (kinds "
                                    f"{', '.join(n for n, k in KINDS.items() if is_utterance_classification(k))}).")
        for a in exp["architectures"]:
            if a not in archs:
                problems.append(
                    f"experiments.{exp_name}.architectures: unknown architecture {a!r}; defined: {sorted(archs)}."
                )
            elif wanted == "image" and archs[a]["kind"] == "convnet":
                problems.append(f"experiments.{exp_name}.architectures: {a!r} is a speech ConvNet (kind convnet); "
                                f"an image experiment trains densenet or torchvision architectures.")
            elif wanted == "speech" and archs[a]["kind"] != "convnet":
                problems.append(f"experiments.{exp_name}.architectures: {a!r} is an image network (kind "
                                f"{archs[a]['kind']}); a speech experiment trains convnet architectures.")
        for pair in exp.get("pairs", []):
            if exp_name == SPEECH_EXPERIMENT:
                problems.append(f"experiments.{exp_name}.pairs: the speech experiment's pairs are fixed "
                                f"(ASR → SER and SER → ASR); remove pairs.")
                break
            strangers = [t for t in pair if t not in exp["tasks"]]
            if strangers:
                problems.append(f"experiments.{exp_name}.pairs: {pair} names {', '.join(map(repr, strangers))}, not "
                                f"among the experiment's tasks {exp['tasks']}.")
            elif pair[0] == pair[1]:
                problems.append(f"experiments.{exp_name}.pairs: {pair} transfers a task to itself; that is the "
                                f"self-transfer control (self_transfer: true).")
    if not problems:
        problems += _shared_model_errors(config) + _image_size_errors(config)
    speech = config["experiments"].get(SPEECH_EXPERIMENT)
    if speech and not problems:
        by_role = {kind_of(config, tasks[t]["dataset"]).speech_role: t for t in speech["tasks"]}
        if set(by_role) != {"asr", "ser"}:
            roles = {kind.speech_role: name for name, kind in KINDS.items() if kind.speech_role}
            problems.append(f"experiments.speech.tasks: name one {roles['asr']} task (phone recognition) and one "
                            f"{roles['ser']} task (emotion recognition).")
        else:
            ser_folds = set(tasks[by_role["ser"]]["folds"])
            extra = sorted(set(speech["ser_source_folds"]) - ser_folds)
            if extra:
                problems.append(
                    f"experiments.speech.ser_source_folds: {extra} are not in "
                    f"tasks.{by_role['ser']}.folds {sorted(ser_folds)}."
                )
    return problems


def _shared_model_errors(config: dict) -> list[str]:
    """Two enabled experiments may not train the same primary model (an architecture on a task):
    its folder under models/ would be claimed twice."""
    owner: dict[tuple[str, str], str] = {}
    problems = []
    for exp_name, exp in config["experiments"].items():
        if not exp["enabled"]:
            continue
        for arch in exp["architectures"]:
            for task in exp["tasks"]:
                other = owner.setdefault((arch, task), exp_name)
                if other != exp_name:
                    problems.append(f"experiments.{exp_name}: trains {arch} on {task}, as experiments.{other} does; "
                                    f"give one of them another architecture entry (a copy under another name).")
    return problems


def _image_size_errors(config: dict) -> list[str]:
    """The tasks of an image experiment see images of one size (a transfer feeds the target's
    images to the source's network)."""
    problems = []
    for exp_name in image_experiments(config):
        exp = config["experiments"][exp_name]
        sizes = {t: image_size(config, config["tasks"][t]["dataset"]) for t in exp["tasks"]}
        if len(set(sizes.values())) > 1:
            listed = ", ".join(f"{t} {s} × {s}" for t, s in sizes.items())
            problems.append(f"experiments.{exp_name}.tasks: images of different sizes ({listed}); set the same "
                            f"datasets.<name>.image_size for all of them.")
    return problems


def torchvision_errors(config: dict) -> list[str]:
    """The proof that each torchvision architecture's groups tile its network, on the images of
    the experiments that train it (:func:`gradual_transfer.models.torchvision_net.verify_groups`:
    built with random weights on the CPU, never downloaded; about a second per network)."""
    shapes = {}
    for exp_name in image_experiments(config):
        exp = config["experiments"][exp_name]
        for arch in exp["architectures"]:
            if config["architectures"][arch]["kind"] == "torchvision":
                size = image_size(config, config["tasks"][exp["tasks"][0]]["dataset"])
                shapes.setdefault(arch, (3, size, size))
    if not shapes:
        return []
    from gradual_transfer.models.torchvision_net import verify_groups

    return [problem for arch, shape in shapes.items()
            for problem in verify_groups(config["architectures"][arch], shape, arch)]


def image_size(config: dict, dataset: str) -> int:
    """The side of a dataset's square images as the networks see them: fixed by its kind's corpus
    (32 for CIFAR and SVHN), or its ``image_size`` (an image folder)."""
    return kind_of(config, dataset).image_size or config["datasets"][dataset]["image_size"]
