"""``python -m iam_sudo`` and the ``iam-sudo`` console script.

Only this light module is imported before Ctrl-C is handled: the CLI's own imports take a
tenth of a second or more, and an interrupt during them must be the same one line and
exit status 130 as any other, not a traceback.
"""

import sys


def main() -> None:
    """Import and run the CLI (:func:`iam_sudo.cli.main.main`); Ctrl-C while importing: 130.

    A credential_process answer the cache holds for this very command line is printed
    first, without the CLI (:func:`iam_sudo.cli.credential_process.answer_from_cache`).
    """
    try:
        from .cli.credential_process import answer_from_cache

        if answer_from_cache(sys.argv[1:]):
            sys.stdout.flush()
            return
        from .cli.main import main as run
    except KeyboardInterrupt:
        sys.stderr.write("iam-sudo: aborted\n")
        sys.exit(130)
    run()


if __name__ == "__main__":
    main()
