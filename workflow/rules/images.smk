# Image experiments: prepare the datasets torchvision reads (CIFAR-10, CIFAR-100, SVHN) and image
# folders of one's own as Arrow splits (the models are trained by the rules in models.smk).


rule prepare_images:
    input:
        root=lambda w: PLAN.data.root_input(w.dataset),
    output:
        **PATHS.image_data("{dataset}"),
    log:
        PATHS.log("data/{dataset}"),
    benchmark:
        PATHS.benchmark("data/{dataset}")
    wildcard_constraints:
        dataset=PLAN.data.torchvision(),
    conda:
        "../../envs/torch.yaml"
    params:
        split=lambda w: PLAN.data.image_preparation(w.dataset),
        root=lambda w: PLAN.data.root(w.dataset),
        corpus=lambda w: PLAN.data.content(w.dataset),
        version=STAGE_VERSIONS["images"],
    script:
        "../../scripts/prepare_images.py"


# A dataset of one's own in torchvision's ImageFolder layout (datasets.<name>.kind: imagefolder)
rule prepare_imagefolder:
    input:
        root=lambda w: PLAN.data.root(w.dataset),
    output:
        **PATHS.imagefolder_outputs("{dataset}"),
    log:
        PATHS.log("data/{dataset}"),
    benchmark:
        PATHS.benchmark("data/{dataset}")
    wildcard_constraints:
        dataset=PLAN.data.of_kind("imagefolder"),
    conda:
        "../../envs/torch.yaml"
    params:
        preparation=lambda w: PLAN.data.imagefolder_preparation(w.dataset),
        corpus=lambda w: PLAN.data.content(w.dataset),
        version=STAGE_VERSIONS["images"],
    script:
        "../../scripts/prepare_imagefolder.py"
