"""Command-line entry points: every workflow step can be run and debugged outside Snakemake.

    python -m gradual_transfer check-config --configfile config.yaml [--configfile config.demo.yaml]
    python -m gradual_transfer demo-corpus timit results/demo/corpora/timit --configfile ...
"""

from __future__ import annotations

import argparse
import logging
import sys

from gradual_transfer import logs
from gradual_transfer.config import ConfigError, load_config, validate_config


def _configfiles(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--configfile", action="append", default=None,
                        help="config file(s), merged in order like Snakemake's --configfile "
                             "(default: config.yaml)")


def _load(args) -> dict:
    return load_config(*(args.configfile or ["config.yaml"]))


def cmd_check_config(args) -> int:
    config = validate_config(_load(args), check_data=not args.no_data)
    print(f"configuration is valid ({', '.join(args.configfile or ['config.yaml'])})")
    return 0 if config else 1


def cmd_demo_corpus(args) -> int:
    from gradual_transfer.demo import generate_corpus

    config = validate_config(_load(args), check_data=False)
    if args.dataset not in config.get("demo", {}):
        raise ConfigError(f"demo.{args.dataset}: no demo settings in the config; pass --configfile config.demo.yaml")
    generate_corpus(args.dataset, args.out, config["demo"][args.dataset], config["demo"]["seed"])
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gradual-transfer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log", help="also write the log to this file")
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("check-config", help="validate a configuration (schema, references, data roots)")
    _configfiles(p)
    p.add_argument("--no-data", action="store_true", help="skip the data-root checks")
    p.set_defaults(run=cmd_check_config)

    p = commands.add_parser("demo-corpus", help="generate one demo corpus in its real on-disk format")
    p.add_argument("dataset", choices=["timit", "iemocap", "cifar10", "cifar100", "svhn"])
    p.add_argument("out", help="directory to create")
    _configfiles(p)
    p.set_defaults(run=cmd_demo_corpus)

    args = parser.parse_args(argv)
    logs.configure(args.log)
    try:
        return args.run(args)
    except ConfigError as error:
        logging.getLogger("gradual_transfer").error("%s", error)
        return 2


if __name__ == "__main__":
    sys.exit(main())
