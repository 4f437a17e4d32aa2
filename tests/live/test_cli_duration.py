"""``collect --duration`` and ``demo --duration`` take a finite number of seconds above 0, nothing else."""

from __future__ import annotations

import pytest

from flows.cli import build_parser


@pytest.mark.parametrize("command", ["collect", "demo"])
@pytest.mark.parametrize("value", ["0", "-5", "nan", "inf", "-inf", "ten"])
def test_a_duration_that_is_not_a_positive_finite_number_is_refused(
    command: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # before: 0, -5 and nan ran a collector that stopped at once and exited 0 with nothing collected
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([command, "--duration", value])
    assert exited.value.code == 2
    assert "--duration" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["collect", "demo"])
def test_a_positive_duration_is_kept(command: str) -> None:
    assert build_parser().parse_args([command, "--duration", "2.5"]).duration == 2.5
