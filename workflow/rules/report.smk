# Aggregation of every model's metrics into the long-form results table, and the figures.
# The report shows each table as an HTML page, written beside its TSV by the same rule, and
# offers the TSV for download; captions read the run's own settings (report_settings); labels
# name each item in the report's navigation.
from gradual_transfer.claims import family_contrast
from gradual_transfer.report import landing_text

# Snakemake renders the landing text (workflow/report/workflow.rst) with the config alone: the
# text the library writes from the run travels in it.
config["report_landing_text"] = landing_text(config, PLAN.report.demo)


rule aggregate_results:
    input:
        PLAN.training.results(),
    output:
        parquet=PATHS.table("results.parquet"),
        tsv=report(
            PATHS.table("results.tsv"),
            caption="../report/results_table.rst",
            category="Tables (TSV, full precision)",
            labels={"table": "results"},
        ),
        summary=report(
            PATHS.table("summary.tsv"),
            caption="../report/summary_table.rst",
            category="Tables (TSV, full precision)",
            labels={"table": "summary"},
        ),
        tsv_page=report(
            PATHS.table("results.html"),
            caption="../report/results_table.rst",
            category="Tables",
            labels={"table": "results"},
        ),
        summary_page=report(
            PATHS.table("summary.html"),
            caption="../report/summary_table.rst",
            category="Tables",
            labels={"table": "summary"},
        ),
    log:
        PATHS.log("tables/results"),
    conda:
        "../../envs/torch.yaml"
    params:
        version=STAGE_VERSIONS["tables"],
    script:
        "../../scripts/aggregate_results.py"


rule cost_table:
    input:
        metrics=PLAN.training.own_metrics(),
        screen=(
            PLAN.screen.files("estimates") + PLAN.screen.files("similarity")
            if PLAN.screen.enabled
            else []
        ),
    output:
        tsv=report(
            PATHS.table("cost.tsv"),
            caption="../report/cost_table.rst",
            category="Tables (TSV, full precision)",
            labels={"table": "cost"},
        ),
        page=report(
            PATHS.table("cost.html"),
            caption="../report/cost_table.rst",
            category="Tables",
            labels={"table": "cost"},
        ),
    log:
        PATHS.log("tables/cost"),
    conda:
        "../../envs/torch.yaml"
    params:
        version=STAGE_VERSIONS["tables"],
    script:
        "../../scripts/cost_table.py"


rule figure_images:
    input:
        PATHS.table("results.parquet"),
    output:
        png=report(
            PATHS.figure("figure1_images"),
            caption="../report/figure1_images.rst",
            category="Figures",
            labels={"figure": "Figure 1: images, test split"},
        ),
        pdf=PATHS.figure("figure1_images", "pdf"),
        validation_png=report(
            PATHS.figure("figure1_images_validation"),
            caption="../report/figure_validation.rst",
            category="Figures",
            labels={"figure": "Figure 1: images, validation split (supplementary)"},
        ),
        validation_pdf=PATHS.figure("figure1_images_validation", "pdf"),
    log:
        PATHS.log("figures/figure1_images"),
    conda:
        "../../envs/torch.yaml"
    params:
        experiment="images",
        title=PLAN.report.figure_title("images"),
        lc=PLAN.report.lc_sets("images"),
        comparable=family_contrast(config, "images"),
        settings=PLAN.report.settings(["images"]),
        dpi=config["figures"]["dpi"],
        version=STAGE_VERSIONS["figures"],
    script:
        "../../scripts/figure.py"


rule figure_speech:
    input:
        PATHS.table("results.parquet"),
    output:
        png=report(
            PATHS.figure("figure2_speech"),
            caption="../report/figure2_speech.rst",
            category="Figures",
            labels={"figure": "Figure 2: speech, test split"},
        ),
        pdf=PATHS.figure("figure2_speech", "pdf"),
        validation_png=report(
            PATHS.figure("figure2_speech_validation"),
            caption="../report/figure_validation.rst",
            category="Figures",
            labels={"figure": "Figure 2: speech, validation split (supplementary)"},
        ),
        validation_pdf=PATHS.figure("figure2_speech_validation", "pdf"),
    log:
        PATHS.log("figures/figure2_speech"),
    conda:
        "../../envs/torch.yaml"
    params:
        experiment="speech",
        title=PLAN.report.figure_title("speech"),
        lc=PLAN.report.lc_sets("speech"),
        comparable=family_contrast(config, "speech"),
        settings=PLAN.report.settings(["speech"]),
        dpi=config["figures"]["dpi"],
        version=STAGE_VERSIONS["figures"],
    script:
        "../../scripts/figure.py"


# A study of the user's own (an experiment of another name): drawn as Figure 1 is.
rule figure_study:
    input:
        PATHS.table("results.parquet"),
    output:
        png=report(
            PATHS.figure("study_{experiment}"),
            caption="../report/figure_study.rst",
            category="Figures",
            labels={"figure": "Study {experiment}, test split"},
        ),
        pdf=PATHS.figure("study_{experiment}", "pdf"),
        validation_png=report(
            PATHS.figure("study_{experiment}_validation"),
            caption="../report/figure_validation.rst",
            category="Figures",
            labels={"figure": "Study {experiment}, validation split (supplementary)"},
        ),
        validation_pdf=PATHS.figure("study_{experiment}_validation", "pdf"),
    log:
        PATHS.log("figures/study_{experiment}"),
    wildcard_constraints:
        experiment=PLAN.report.own_experiment(),
    conda:
        "../../envs/torch.yaml"
    params:
        experiment=lambda w: w.experiment,
        title=lambda w: PLAN.report.figure_title(w.experiment),
        lc=lambda w: PLAN.report.lc_sets(w.experiment),
        comparable=lambda w: family_contrast(config, w.experiment),
        settings=lambda w: PLAN.report.settings([w.experiment]),
        dpi=config["figures"]["dpi"],
        version=STAGE_VERSIONS["figures"],
    script:
        "../../scripts/figure.py"


rule transferability:
    input:
        PATHS.table("results.parquet"),
    output:
        tsv=report(
            PATHS.table("transferability.tsv"),
            caption="../report/transferability_table.rst",
            category="Tables (TSV, full precision)",
            labels={"table": "transferability"},
        ),
        page=report(
            PATHS.table("transferability.html"),
            caption="../report/transferability_table.rst",
            category="Tables",
            labels={"table": "transferability"},
        ),
    log:
        PATHS.log("tables/transferability"),
    conda:
        "../../envs/torch.yaml"
    params:
        settings=PLAN.report.transferability(),
        version=STAGE_VERSIONS["tables"],
    script:
        "../../scripts/transferability.py"


rule figure_transferability:
    input:
        PATHS.table("transferability.tsv"),
    output:
        png=report(
            PATHS.figure("figure3_transferability"),
            caption="../report/figure3_transferability.rst",
            category="Figures",
            labels={"figure": "Figure 3: transferability"},
        ),
        pdf=PATHS.figure("figure3_transferability", "pdf"),
    log:
        PATHS.log("figures/figure3_transferability"),
    conda:
        "../../envs/torch.yaml"
    params:
        title=PLAN.report.figure_title("transferability"),
        settings=PLAN.report.settings(PLAN.report.experiments),
        dpi=config["figures"]["dpi"],
        version=STAGE_VERSIONS["figures"],
    script:
        "../../scripts/figure_transferability.py"


rule figure_curves:
    input:
        PLAN.training.own_metrics(),
    output:
        png=report(
            PATHS.figure("training_curves"),
            caption="../report/training_curves.rst",
            category="Figures",
            labels={"figure": "Training curves"},
        ),
        pdf=PATHS.figure("training_curves", "pdf"),
    log:
        PATHS.log("figures/training_curves"),
    conda:
        "../../envs/torch.yaml"
    params:
        title=PLAN.report.figure_title("curves"),
        task_metrics=PLAN.report.task_metrics(),
        settings=PLAN.report.settings(PLAN.report.experiments),
        dpi=config["figures"]["dpi"],
        version=STAGE_VERSIONS["figures"],
    script:
        "../../scripts/figure_curves.py"


rule per_speaker_table:
    input:
        [path for path, _ in PLAN.training.primary_decodes()],
    output:
        tsv=report(
            PATHS.table("per_speaker.tsv"),
            caption="../report/per_speaker_table.rst",
            category="Tables (TSV, full precision)",
            labels={"table": "per_speaker"},
        ),
        page=report(
            PATHS.table("per_speaker.html"),
            caption="../report/per_speaker_table.rst",
            category="Tables",
            labels={"table": "per_speaker"},
        ),
    log:
        PATHS.log("tables/per_speaker"),
    conda:
        "../../envs/torch.yaml"
    params:
        labels=[label for _, label in PLAN.training.primary_decodes()],
        version=STAGE_VERSIONS["tables"],
    script:
        "../../scripts/per_speaker_table.py"
