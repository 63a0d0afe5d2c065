# The screen (gradual_transfer.plan.screen): transferability estimates from the primaries alone,
# and what fine-tuning changed in each transfer. Jobs of their own, on the CPU, so adding them
# re-runs no training; `snakemake screen` runs the primaries and the estimates only.

SCREEN = PLAN.screen


rule estimates:
    input:
        unpack(lambda w: SCREEN.inputs("estimates", w.screen)),
    output:
        SCREEN.file("estimates", "{screen}"),
    log:
        PATHS.log("estimates/{screen}"),
    benchmark:
        PATHS.benchmark("estimates/{screen}")
    wildcard_constraints:
        screen=SCREEN.folders("estimates"),
    conda:
        "../../envs/torch.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        screen=lambda w: SCREEN.params("estimates", w.screen),
    script:
        "../../scripts/estimates.py"


rule similarity:
    input:
        unpack(lambda w: SCREEN.inputs("similarity", w.screen)),
    output:
        SCREEN.file("similarity", "{screen}"),
    log:
        PATHS.log("similarity/{screen}"),
    benchmark:
        PATHS.benchmark("similarity/{screen}")
    wildcard_constraints:
        screen=SCREEN.folders("similarity"),
    conda:
        "../../envs/torch.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        screen=lambda w: SCREEN.params("similarity", w.screen),
    script:
        "../../scripts/similarity.py"


rule estimates_table:
    input:
        estimates=SCREEN.files("estimates"),
    output:
        estimates=report(
            PATHS.table("estimates.tsv"),
            caption="../report/estimates_table.rst",
            category="Tables (TSV, full precision)",
            labels={"table": "estimates"},
        ),
        estimates_page=report(
            PATHS.table("estimates.html"),
            caption="../report/estimates_table.rst",
            category="Tables",
            labels={"table": "estimates"},
        ),
        similarity=PATHS.table("similarity_primaries.tsv"),
        similarity_page=PATHS.table("similarity_primaries.html"),
    log:
        PATHS.log("tables/estimates"),
    conda:
        "../../envs/torch.yaml"
    params:
        layer_groups=PLAN.report.transferability()["layer_groups"],
        version=STAGE_VERSIONS["tables"],
    script:
        "../../scripts/screen_tables.py"


rule similarity_table:
    input:
        estimates=SCREEN.files("estimates"),
        similarity=SCREEN.files("similarity"),
    output:
        similarity=report(
            PATHS.table("similarity.tsv"),
            caption="../report/similarity_table.rst",
            category="Tables (TSV, full precision)",
            labels={"table": "similarity"},
        ),
        similarity_page=report(
            PATHS.table("similarity.html"),
            caption="../report/similarity_table.rst",
            category="Tables",
            labels={"table": "similarity"},
        ),
    log:
        PATHS.log("tables/similarity"),
    conda:
        "../../envs/torch.yaml"
    params:
        version=STAGE_VERSIONS["tables"],
    script:
        "../../scripts/screen_tables.py"


rule estimate_agreement:
    input:
        estimates=PATHS.table("estimates.tsv"),
        transferability=PATHS.table("transferability.tsv"),
    output:
        tsv=report(
            PATHS.table("estimate_agreement.tsv"),
            caption="../report/estimate_agreement_table.rst",
            category="Tables (TSV, full precision)",
            labels={"table": "estimate_agreement"},
        ),
        page=report(
            PATHS.table("estimate_agreement.html"),
            caption="../report/estimate_agreement_table.rst",
            category="Tables",
            labels={"table": "estimate_agreement"},
        ),
        png=report(
            PATHS.figure("estimates"),
            caption="../report/figure_estimates.rst",
            category="Figures",
            labels={"figure": "Estimates against the measured curves"},
        ),
        pdf=PATHS.figure("estimates", "pdf"),
    log:
        PATHS.log("tables/estimate_agreement"),
    conda:
        "../../envs/torch.yaml"
    params:
        title=PLAN.report.figure_title("estimates"),
        settings=PLAN.report.settings(PLAN.report.experiments),
        dpi=config["figures"]["dpi"],
        version=STAGE_VERSIONS["tables"],
    script:
        "../../scripts/estimate_agreement.py"


# snakemake screen: the primaries, then the estimates and the primaries' similarity; no transfer.
rule screen:
    input:
        SCREEN.screen_targets(),
