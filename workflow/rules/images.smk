# Image experiments: prepare CIFAR-10, CIFAR-100, SVHN and image folders of one's own as Arrow
# splits (the models are trained by the rules in models.smk).


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
        dataset=datasets_of_kind("cifar10", "cifar100", "svhn"),
    conda:
        "../../envs/torch.yaml"
    params:
        split=image_preparation_params,
        root=lambda w: dataset_root(w.dataset),
        corpus=lambda w: corpus_content(w.dataset),
        version=STAGE_VERSIONS["images"],
    script:
        "../../scripts/prepare_images.py"


# A dataset of one's own in torchvision's ImageFolder layout (datasets.<name>.kind: imagefolder)
rule prepare_imagefolder:
    input:
        root=lambda w: dataset_root(w.dataset),
    output:
        train=f"{OUT}/data/{{dataset}}/train.arrow",
        validation=f"{OUT}/data/{{dataset}}/validation.arrow",
        test=f"{OUT}/data/{{dataset}}/test.arrow",
        stats=f"{OUT}/data/{{dataset}}/stats.json",
        classes=f"{OUT}/data/{{dataset}}/classes.json",
        bad_images=f"{OUT}/data/{{dataset}}/bad_images.txt",
    log:
        f"{OUT}/logs/data/{{dataset}}.log",
    benchmark:
        f"{OUT}/benchmarks/data/{{dataset}}.tsv"
    wildcard_constraints:
        dataset=datasets_of_kind("imagefolder"),
    conda:
        "../../envs/torch.yaml"
    params:
        preparation=imagefolder_params,
        corpus=lambda w: corpus_content(w.dataset),
        version=STAGE_VERSIONS["images"],
    script:
        "../../scripts/prepare_imagefolder.py"
