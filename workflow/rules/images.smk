# Image experiment: prepare CIFAR-10, CIFAR-100 and SVHN splits as Arrow, train a DenseNet per
# dataset, transfer it to every other dataset for every l_c.

IMAGE_TRAINING = dict(gpu=1, mem_mb=8000, runtime=24 * 60)


rule prepare_images:
    input:
        root=lambda w: dataset_input(w.dataset),
    output:
        train=f"{OUT}/data/{{dataset}}/train.arrow",
        validation=f"{OUT}/data/{{dataset}}/validation.arrow",
        test=f"{OUT}/data/{{dataset}}/test.arrow",
        stats=f"{OUT}/data/{{dataset}}/stats.json",
    log:
        f"{OUT}/logs/data/{{dataset}}.log",
    benchmark:
        f"{OUT}/benchmarks/data/{{dataset}}.tsv"
    wildcard_constraints:
        dataset="cifar10|cifar100|svhn",
    conda:
        "../../envs/torch.yaml"
    params:
        split=image_preparation_params,
        root=lambda w: dataset_root(w.dataset),
    script:
        "../../scripts/prepare_images.py"


rule image_primary:
    input:
        unpack(lambda w: image_data(w.task)),
    output:
        model=f"{OUT}/models/{{arch}}/primary/{{task}}/fold0/model.pt",
        metrics=f"{OUT}/models/{{arch}}/primary/{{task}}/fold0/metrics.json",
    log:
        f"{OUT}/logs/models/{{arch}}/primary/{{task}}.log",
    benchmark:
        f"{OUT}/benchmarks/models/{{arch}}/primary/{{task}}.tsv"
    wildcard_constraints:
        arch=choice(IMAGE_ARCHS),
        task=choice(IMAGE_TASKS),
    conda:
        "../../envs/torch.yaml"
    threads: 2
    resources:
        **IMAGE_TRAINING,
    params:
        arch=architecture,
        classes=lambda w: config["tasks"][w.task]["classes"],
        recipe=lambda w: canonical(config["tasks"][w.task]["training"]),
    script:
        "../../scripts/train_image.py"


rule image_transfer:
    input:
        unpack(lambda w: image_data(w.target)),
        source=f"{OUT}/models/{{arch}}/primary/{{source}}/fold0/model.pt",
    output:
        model=f"{OUT}/models/{{arch}}/transfer/{{source}}-to-{{target}}/fold0/lc{{lc}}/model.pt",
        metrics=f"{OUT}/models/{{arch}}/transfer/{{source}}-to-{{target}}/fold0/lc{{lc}}/metrics.json",
    log:
        f"{OUT}/logs/models/{{arch}}/transfer/{{source}}-to-{{target}}/lc{{lc}}.log",
    benchmark:
        f"{OUT}/benchmarks/models/{{arch}}/transfer/{{source}}-to-{{target}}/lc{{lc}}.tsv"
    wildcard_constraints:
        arch=choice(IMAGE_ARCHS),
        source=choice(IMAGE_TASKS),
        target=choice(IMAGE_TASKS),
        lc=r"\d+",
    conda:
        "../../envs/torch.yaml"
    threads: 2
    resources:
        **IMAGE_TRAINING,
    params:
        arch=architecture,
        classes=lambda w: config["tasks"][w.target]["classes"],
        recipe=lambda w: canonical(config["tasks"][w.target]["finetune"]),
        lc=lambda w: int(w.lc),
    script:
        "../../scripts/train_image.py"
