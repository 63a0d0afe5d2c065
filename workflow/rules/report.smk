# Aggregation of every model's metrics into the long-form results table, and the figures.
# The report shows each table as an HTML page, written beside its TSV by the same rule, and
# offers the TSV for download; captions read the run's own settings (report_settings); labels
# name each item in the report's navigation.
from gradual_transfer.claims import family_contrast
from gradual_transfer.report import landing_text

# Snakemake renders the landing text (workflow/report/workflow.rst) with the config alone: the
# text the library writes from the run travels in it.
config["report_landing_text"] = landing_text(config, bool(DEMO_DATASETS))


rule aggregate_results:
    input:
        all_metrics(),
    output:
        parquet=f"{OUT}/tables/results.parquet",
        tsv=report(
            f"{OUT}/tables/results.tsv",
            caption="../report/results_table.rst",
            category="Tables (TSV, full precision)",
            labels={"table": "results"},
        ),
        summary=report(
            f"{OUT}/tables/summary.tsv",
            caption="../report/summary_table.rst",
            category="Tables (TSV, full precision)",
            labels={"table": "summary"},
        ),
        tsv_page=report(
            f"{OUT}/tables/results.html",
            caption="../report/results_table.rst",
            category="Tables",
            labels={"table": "results"},
        ),
        summary_page=report(
            f"{OUT}/tables/summary.html",
            caption="../report/summary_table.rst",
            category="Tables",
            labels={"table": "summary"},
        ),
    log:
        f"{OUT}/logs/tables/results.log",
    conda:
        "../../envs/torch.yaml"
    params:
        version=STAGE_VERSIONS["tables"],
    script:
        "../../scripts/aggregate_results.py"


rule cost_table:
    input:
        training_metrics(),
    output:
        tsv=report(
            f"{OUT}/tables/cost.tsv",
            caption="../report/cost_table.rst",
            category="Tables (TSV, full precision)",
            labels={"table": "cost"},
        ),
        page=report(
            f"{OUT}/tables/cost.html",
            caption="../report/cost_table.rst",
            category="Tables",
            labels={"table": "cost"},
        ),
    log:
        f"{OUT}/logs/tables/cost.log",
    conda:
        "../../envs/torch.yaml"
    params:
        version=STAGE_VERSIONS["tables"],
    script:
        "../../scripts/cost_table.py"


rule figure_images:
    input:
        f"{OUT}/tables/results.parquet",
    output:
        png=report(
            f"{OUT}/figures/figure1_images.png",
            caption="../report/figure1_images.rst",
            category="Figures",
            labels={"figure": "Figure 1: images, test split"},
        ),
        pdf=f"{OUT}/figures/figure1_images.pdf",
        validation_png=report(
            f"{OUT}/figures/figure1_images_validation.png",
            caption="../report/figure_validation.rst",
            category="Figures",
            labels={"figure": "Figure 1: images, validation split (supplementary)"},
        ),
        validation_pdf=f"{OUT}/figures/figure1_images_validation.pdf",
    log:
        f"{OUT}/logs/figures/figure1_images.log",
    conda:
        "../../envs/torch.yaml"
    params:
        experiment="images",
        title=figure_title("images"),
        lc=lc_sets("images"),
        comparable=family_contrast(config, "images"),
        settings=report_settings(["images"]),
        dpi=config["figures"]["dpi"],
        version=STAGE_VERSIONS["figures"],
    script:
        "../../scripts/figure.py"


rule figure_speech:
    input:
        f"{OUT}/tables/results.parquet",
    output:
        png=report(
            f"{OUT}/figures/figure2_speech.png",
            caption="../report/figure2_speech.rst",
            category="Figures",
            labels={"figure": "Figure 2: speech, test split"},
        ),
        pdf=f"{OUT}/figures/figure2_speech.pdf",
        validation_png=report(
            f"{OUT}/figures/figure2_speech_validation.png",
            caption="../report/figure_validation.rst",
            category="Figures",
            labels={"figure": "Figure 2: speech, validation split (supplementary)"},
        ),
        validation_pdf=f"{OUT}/figures/figure2_speech_validation.pdf",
    log:
        f"{OUT}/logs/figures/figure2_speech.log",
    conda:
        "../../envs/torch.yaml"
    params:
        experiment="speech",
        title=figure_title("speech"),
        lc=lc_sets("speech"),
        comparable=family_contrast(config, "speech"),
        settings=report_settings(["speech"]),
        dpi=config["figures"]["dpi"],
        version=STAGE_VERSIONS["figures"],
    script:
        "../../scripts/figure.py"


# A study of the user's own (an experiment of another name): drawn as Figure 1 is.
rule figure_study:
    input:
        f"{OUT}/tables/results.parquet",
    output:
        png=report(
            f"{OUT}/figures/study_{{experiment}}.png",
            caption="../report/figure_study.rst",
            category="Figures",
            labels={"figure": "Study {experiment}, test split"},
        ),
        pdf=f"{OUT}/figures/study_{{experiment}}.pdf",
        validation_png=report(
            f"{OUT}/figures/study_{{experiment}}_validation.png",
            caption="../report/figure_validation.rst",
            category="Figures",
            labels={"figure": "Study {experiment}, validation split (supplementary)"},
        ),
        validation_pdf=f"{OUT}/figures/study_{{experiment}}_validation.pdf",
    log:
        f"{OUT}/logs/figures/study_{{experiment}}.log",
    wildcard_constraints:
        experiment="|".join(map(re.escape, OWN_EXPERIMENTS)) or "(?!)",
    conda:
        "../../envs/torch.yaml"
    params:
        experiment=lambda w: w.experiment,
        title=lambda w: figure_title(w.experiment),
        lc=lambda w: lc_sets(w.experiment),
        comparable=lambda w: family_contrast(config, w.experiment),
        settings=lambda w: report_settings([w.experiment]),
        dpi=config["figures"]["dpi"],
        version=STAGE_VERSIONS["figures"],
    script:
        "../../scripts/figure.py"


rule transferability:
    input:
        f"{OUT}/tables/results.parquet",
    output:
        tsv=report(
            f"{OUT}/tables/transferability.tsv",
            caption="../report/transferability_table.rst",
            category="Tables (TSV, full precision)",
            labels={"table": "transferability"},
        ),
        page=report(
            f"{OUT}/tables/transferability.html",
            caption="../report/transferability_table.rst",
            category="Tables",
            labels={"table": "transferability"},
        ),
    log:
        f"{OUT}/logs/tables/transferability.log",
    conda:
        "../../envs/torch.yaml"
    params:
        settings=transferability_settings(config),
        version=STAGE_VERSIONS["tables"],
    script:
        "../../scripts/transferability.py"


rule figure_transferability:
    input:
        f"{OUT}/tables/transferability.tsv",
    output:
        png=report(
            f"{OUT}/figures/figure3_transferability.png",
            caption="../report/figure3_transferability.rst",
            category="Figures",
            labels={"figure": "Figure 3: transferability"},
        ),
        pdf=f"{OUT}/figures/figure3_transferability.pdf",
    log:
        f"{OUT}/logs/figures/figure3_transferability.log",
    conda:
        "../../envs/torch.yaml"
    params:
        title=figure_title("transferability"),
        settings=report_settings(EXPERIMENTS),
        dpi=config["figures"]["dpi"],
        version=STAGE_VERSIONS["figures"],
    script:
        "../../scripts/figure_transferability.py"


rule figure_curves:
    input:
        training_metrics(),
    output:
        png=report(
            f"{OUT}/figures/training_curves.png",
            caption="../report/training_curves.rst",
            category="Figures",
            labels={"figure": "Training curves"},
        ),
        pdf=f"{OUT}/figures/training_curves.pdf",
    log:
        f"{OUT}/logs/figures/training_curves.log",
    conda:
        "../../envs/torch.yaml"
    params:
        title=figure_title("curves"),
        task_metrics=canonical(
            {task: entry["metric"] for task, entry in config["tasks"].items()}
        ),
        settings=report_settings(EXPERIMENTS),
        dpi=config["figures"]["dpi"],
        version=STAGE_VERSIONS["figures"],
    script:
        "../../scripts/figure_curves.py"


rule per_speaker_table:
    input:
        [path for path, _ in asr_primary_decodes()],
    output:
        tsv=report(
            f"{OUT}/tables/per_speaker.tsv",
            caption="../report/per_speaker_table.rst",
            category="Tables (TSV, full precision)",
            labels={"table": "per_speaker"},
        ),
        page=report(
            f"{OUT}/tables/per_speaker.html",
            caption="../report/per_speaker_table.rst",
            category="Tables",
            labels={"table": "per_speaker"},
        ),
    log:
        f"{OUT}/logs/tables/per_speaker.log",
    conda:
        "../../envs/torch.yaml"
    params:
        labels=[label for _, label in asr_primary_decodes()],
        version=STAGE_VERSIONS["tables"],
    script:
        "../../scripts/per_speaker_table.py"
