# Demo corpora: small data sets in the real on-disk formats (TIMIT, IEMOCAP, CIFAR, SVHN),
# generated offline and deterministically so the real readers and rules run on them.


rule demo_corpus:
    output:
        directory(f"{OUT}/corpora/{{dataset}}"),
    log:
        f"{OUT}/logs/demo_corpus/{{dataset}}.log",
    benchmark:
        f"{OUT}/benchmarks/demo_corpus/{{dataset}}.tsv"
    conda:
        "../../envs/demo.yaml"
    params:
        settings=demo_params,
        seed=config.get("demo", {}).get("seed", 0),
        version=STAGE_VERSIONS["demo_corpus"],
    script:
        "../../scripts/demo_corpus.py"
