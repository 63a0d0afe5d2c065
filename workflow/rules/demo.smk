# Demo corpora: small data sets in the real on-disk formats of the paper's corpora, generated
# offline and deterministically so the real readers and rules run on them.


rule demo_corpus:
    output:
        directory(PATHS.corpus("{dataset}")),
    log:
        PATHS.log("demo_corpus/{dataset}"),
    benchmark:
        PATHS.benchmark("demo_corpus/{dataset}")
    conda:
        "../../envs/demo.yaml"
    params:
        settings=lambda w: PLAN.data.demo_settings(w.dataset),
        seed=PLAN.data.demo_seed(),
        version=STAGE_VERSIONS["demo_corpus"],
    script:
        "../../scripts/demo_corpus.py"
