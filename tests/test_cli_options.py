"""The option types and callbacks of ``regcli.cli``, called directly with a stand-in context
(the end-to-end behaviour is tested per command)."""

from __future__ import annotations

import math

import click
import pytest
from click.testing import CliRunner

from regcli.cli import options
from regcli.cli.compare import _parse_optimizers
from regcli.cli.main import COMMANDS, cli
from regcli.cli.profile import _parse_range


class StandInContext:
    """What the callbacks use of a click context: the root and its ``obj`` (and the
    ``command`` a click error looks up)."""

    command = None

    def __init__(self):
        self.obj = None

    def find_root(self):
        return self

    def ensure_object(self, object_type):
        if self.obj is None:
            self.obj = object_type()
        return self.obj


class StandInParam:
    def __init__(self, name: str):
        self.name = name


@pytest.fixture
def ctx():
    return StandInContext()


# --------------------------------------------------------------------------- --center


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("topleft", "topleft"),
        ("center", "center"),
        ("Centre", "center"),
        (" CENTER ", "center"),
        ("12,3.5", (12.0, 3.5)),
        ("-1.5, 2", (-1.5, 2.0)),
        (None, None),
    ],
)
def test_parse_center_accepts(ctx, text, expected):
    assert options._parse_center(ctx, StandInParam("center"), text) == expected


@pytest.mark.parametrize("text", ["middle", "1,2,3", "1", "nan,2", "1,inf", "x,y", ""])
def test_parse_center_refuses(ctx, text):
    with pytest.raises(click.BadParameter, match="expected topleft, center or X,Y"):
        options._parse_center(ctx, StandInParam("center"), text)


# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize(("text", "expected"), [("1.5", 1.5), ("-2", -2.0), (0.25, 0.25)])
def test_finite_float_accepts(text, expected):
    assert options.FINITE_FLOAT.convert(text, None, None) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("abc", "expected a number, got 'abc'"),
        ("nan", "expected a finite number, got 'nan'"),
        ("-inf", "expected a finite number"),
        (math.inf, "expected a finite number"),
        ("1e400", "expected a finite number"),
    ],
)
def test_finite_float_refuses(text, message):
    with pytest.raises(click.BadParameter, match=message):
        options.FINITE_FLOAT.convert(text, None, None)


def test_positive_float():
    assert options.POSITIVE_FLOAT.convert("1e-3", None, None) == 1e-3
    for text in ("0", "-1", "nan", "inf", "1e-400"):
        with pytest.raises(click.BadParameter, match="expected a"):
            options.POSITIVE_FLOAT.convert(text, None, None)
    # the message quotes what was typed, not the 0.0 it rounds to
    with pytest.raises(click.BadParameter, match=r"expected a number x>0, got '1e-400'"):
        options.POSITIVE_FLOAT.convert("1e-400", None, None)


def test_finite_float_range_refuses_nan_that_click_lets_through():
    fraction = options.FiniteFloatRange(0.0, 1.0, max_open=True)
    assert math.isnan(click.FloatRange(0.0, 1.0, max_open=True).convert("nan", None, None))
    assert fraction.convert("0", None, None) == 0.0
    for text in ("nan", "1", "-0.1"):
        with pytest.raises(click.BadParameter):
            fraction.convert(text, None, None)
    assert fraction._describe_range() == "0<=x<1"
    assert options.FiniteFloatRange(min=0.0)._describe_range() == "x>=0"


# --------------------------------------------------------------------------- registries


def test_registry_choice_reads_the_registry_on_use():
    from regcli.metrics import METRICS

    choice = options.RegistryChoice("regcli.metrics", "METRICS", extra=("all",))
    assert choice.choices == (*METRICS, "all")
    assert choice.convert("mi", None, None) == "mi"
    assert choice.convert("all", None, None) == "all"
    with pytest.raises(click.BadParameter, match="'bogus' is not one of"):
        choice.convert("bogus", None, None)


def test_registry_choice_puts_first_names_first():
    from regcli.initialize import INIT_METHODS

    choice = options.RegistryChoice("regcli.initialize", "INIT_METHODS", first=("none",))
    assert choice.choices[0] == "none"
    assert sorted(choice.choices) == sorted(INIT_METHODS)


def test_registry_choice_of_a_missing_registry_is_an_error():
    with pytest.raises(AttributeError):
        _ = options.RegistryChoice("regcli.metrics", "NO_SUCH_REGISTRY").choices


def test_parse_optimizers(ctx):
    param = StandInParam("optimizers")
    assert _parse_optimizers(ctx, param, "nag, adam,nag,,") == ["nag", "adam"]
    with pytest.raises(click.BadParameter, match="unknown optimiser 'bogus'; choose from gd"):
        _parse_optimizers(ctx, param, "nag,bogus")
    with pytest.raises(click.BadParameter, match="expected comma-separated optimiser names"):
        _parse_optimizers(ctx, param, " , ")


# --------------------------------------------------------------------------- bins


def test_bins_pair():
    bins = options.BinsPair(1, 4096)
    assert bins.convert("16", None, None) == 16
    assert bins.convert("16, 8", None, None) == (16, 8)
    for text in ("0", "abc", "3,4,5", "5000", "1.5"):
        with pytest.raises(click.BadParameter, match="whole numbers of bins from 1 to 4096"):
            bins.convert(text, None, None)


def bins_type(command: str):
    (bins,) = [p for p in cli.get_command(None, command).params if p.name == "bins"]
    return bins.type


@pytest.mark.parametrize("command", ["register", "compare", "profile"])
def test_cost_bins_are_the_mi_cost_limits(command):
    bins = bins_type(command)
    from regcli.metrics import MAX_COST_BINS, MIN_COST_BINS

    assert (bins.min, bins.max) == (options.COST_BINS_MIN, options.COST_BINS_MAX)
    assert (options.COST_BINS_MIN, options.COST_BINS_MAX) == (MIN_COST_BINS, MAX_COST_BINS)
    for text in ("2", "3", "1025"):
        with pytest.raises(click.BadParameter):
            bins.convert(text, None, None)


def test_cost_bins_minimum_is_what_the_mi_cost_accepts():
    import numpy as np

    from regcli.errors import InputError
    from regcli.metrics import METRICS

    image = np.linspace(0, 1, 64 * 64).reshape(64, 64)
    METRICS["mi"].cost(image, image, bins=options.COST_BINS_MIN)
    with pytest.raises(InputError):
        METRICS["mi"].cost(image, image, bins=options.COST_BINS_MIN - 1)


def test_plain_histogram_bins_keep_their_own_range():
    assert (bins_type("similarity").min, bins_type("similarity").max) == (2, 4096)
    assert isinstance(bins_type("jointhist"), options.BinsPair)
    assert bins_type("jointhist").convert("1,4096", None, None) == (1, 4096)


# --------------------------------------------------------------------------- profile --range


def test_parse_range(ctx):
    param = StandInParam("values")
    assert _parse_range(ctx, param, None) is None
    assert _parse_range(ctx, param, "-1:1:0.5") == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert _parse_range(ctx, param, "0:1:0.3") == pytest.approx([0, 0.3, 0.6, 0.9])
    for text, message in [
        ("0:10", "expected START:STOP:STEP"),
        ("0:nan:1", "expected finite numbers"),
        ("0:10:0", "STEP must be > 0"),
        ("5:1:1", "STOP must be greater than START"),
        ("0:10:20", "STEP must be at most STOP - START"),
        ("0:1e6:0.01", "at most 5001"),
    ]:
        with pytest.raises(click.BadParameter, match=message):
            _parse_range(ctx, param, text)


def test_profile_param_choices_and_range_help_come_from_the_core(runner):
    from regcli.profile import PROFILE_PARAMS

    (param,) = [p for p in cli.get_command(None, "profile").params if p.name == "param"]
    assert param.type.choices == tuple(PROFILE_PARAMS)
    text = " ".join(runner.invoke(cli, ["profile", "--help"]).output.split())
    for name, (_, half, step) in PROFILE_PARAMS.items():
        assert f"+-{half:g} by {step:g}" in text, name


# --------------------------------------------------------------------------- -v / -q


def test_count_verbosity_adds_up_in_the_root_context(ctx):
    options._count_verbosity(ctx, StandInParam("verbose"), 0)
    assert ctx.obj is None  # nothing given, nothing stored
    options._count_verbosity(ctx, StandInParam("verbose"), 2)
    options._count_verbosity(ctx, StandInParam("quiet"), 1)
    assert ctx.obj == {"verbosity": 1}
    options._count_verbosity(ctx, StandInParam("quiet"), 3)
    assert ctx.obj == {"verbosity": -2}


# --------------------------------------------------------------------------- names and help


@pytest.mark.parametrize("command", list(COMMANDS))
def test_options_named_like_core_arguments(command):
    """Shared options keep one Python name everywhere (the core argument they feed)."""
    names = {
        "--iters": "iterations",
        "--lr": "learning_rate",
        "--opt": "optimizer",
        "--json": "as_json",
        "--bins": "bins",
        "--sigma": "sigma",
        "--metric": "metric",
        "--center": "center",
        "--smooth": "sigma",
        "--range": "values",
    }
    for param in cli.get_command(None, command).params:
        for flag in param.opts:
            if flag in names:
                assert param.name == names[flag], (command, flag)


def test_sigma_help_names_the_metrics_that_use_it_and_their_default(runner):
    from regcli.metrics import DEFAULT_SIGMA, METRICS

    users = [name for name, metric in METRICS.items() if "sigma" in metric.options]
    for command in ("register", "compare", "similarity"):
        text = " ".join(runner.invoke(cli, [command, "--help"]).output.split())
        assert f"({', '.join(users)})" in text, command
        assert f"the metric's own, {DEFAULT_SIGMA:g}" in text, command


def test_options_module_documents_every_shared_option():
    doc = options.__doc__
    shared = [name for name in dir(options) if name.endswith("_opt") or name == "image_argument"]
    assert len(shared) >= 18
    for name in shared:
        assert name in doc, name


# --------------------------------------------------------------------------- --plots


def test_plots_option_is_a_choice_a_command_can_extend():
    @click.command()
    @options.plots_opt()
    def plain(plots):
        click.echo(plots)

    @click.command()
    @options.plots_opt("qc", extra=("qc",))
    def sheet(plots):
        click.echo(plots)

    runner = CliRunner()
    assert runner.invoke(plain, []).output.strip() == "all"
    assert runner.invoke(plain, ["--plots", "none"]).output.strip() == "none"
    assert runner.invoke(plain, ["--plots", "qc"]).exit_code == 2
    assert runner.invoke(sheet, []).output.strip() == "qc"
    assert runner.invoke(sheet, ["--plots", "all"]).output.strip() == "all"
    assert "none|qc|all" in runner.invoke(sheet, ["--help"]).output
