"""An argument parser that answers a typo with the closest command or option.

argparse says ``invalid choice: 'rnu'`` and, for ``--ontologgy``, reports the *required*
``--ontology`` as missing, because it checks required options before it complains about unknown
ones. :class:`SuggestingParser` names the unknown option first and suggests what was probably
meant. Subparsers inherit the class (argparse creates them with the parent's class), so every
command, a plugin's included, gets the same help without being named here.
"""

from __future__ import annotations

import argparse
import difflib
import re
from collections.abc import Iterable, Sequence
from typing import Any, NoReturn

__all__ = ["SuggestingParser", "closest"]

_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+$")


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate most like ``word``, if any is close enough to be a likely typo."""
    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


class SuggestingParser(argparse.ArgumentParser):
    """:class:`argparse.ArgumentParser` with "did you mean" for commands and options."""

    _arguments: list[str] | None = None

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        """As argparse's, except that an unknown option is an error here, with a suggestion.

        A subparser receives only its own part of the command line, so the suggestion comes
        from the options of the command the user typed.
        """
        import sys

        self._arguments = sys.argv[1:] if args is None else list(args)
        parsed, extras = super().parse_known_args(args, namespace)
        unknown = _first_unknown(extras, self._option_string_actions, stop_at_positional=False)
        if unknown is not None:
            self._unknown_option_error(unknown)
        return parsed, extras

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        choices = action.choices
        if choices is not None and isinstance(value, str) and value not in choices:
            names = [str(choice) for choice in choices]
            guess = closest(value, names)
            hint = f"; did you mean {guess!r}?" if guess else ""
            raise argparse.ArgumentError(
                action,
                f"invalid choice: {value!r}{hint} (choose from {', '.join(map(repr, names))})",
            )
        super()._check_value(action, value)

    def error(self, message: str) -> NoReturn:
        # argparse checks required arguments before unknown ones: "--ontologgy" would be
        # reported as a missing --ontology. Name the unknown option instead.
        if message.startswith("the following arguments are required") and self._arguments:
            unknown = _first_unknown(
                self._arguments,
                self._option_string_actions,
                stop_at_positional=self._subparsers is not None,
            )
            if unknown is not None:
                self._unknown_option_error(unknown)
        super().error(message)

    def _unknown_option_error(self, option: str) -> NoReturn:
        names = [name for name in self._option_string_actions if name.startswith("--")]
        guess = closest(option, names)
        hint = f"; did you mean {guess}?" if guess else ""
        super().error(f"unrecognized option {option}{hint}")


def _first_unknown(
    arguments: Sequence[str], known: Iterable[str], *, stop_at_positional: bool
) -> str | None:
    """The first option in ``arguments`` that is not in ``known`` (nor a prefix of one).

    With ``stop_at_positional`` the scan ends at the first positional argument: on a parser
    with subcommands, what follows belongs to the subcommand.
    """
    names = set(known)
    for argument in arguments:
        if argument == "--":
            return None
        if not argument.startswith("-") or argument == "-" or _NUMBER.match(argument):
            if stop_at_positional:
                return None
            continue
        option = argument.split("=", 1)[0] if argument.startswith("--") else argument[:2]
        if option in names:
            continue
        if option.startswith("--") and any(name.startswith(option) for name in names):
            continue  # an abbreviation argparse accepts (or reports as ambiguous itself)
        return option
    return None
