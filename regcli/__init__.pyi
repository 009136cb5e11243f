"""Type stub: the names :mod:`regcli` loads lazily (keep in step with ``_EXPORTS``)."""

from regcli._validate import (
    check_image as check_image,
)
from regcli.errors import (
    InputError as InputError,
    RegcliError as RegcliError,
    RegistrationError as RegistrationError,
)
from regcli.histogram import (
    entropy as entropy,
    joint_histogram as joint_histogram,
)
from regcli.images import (
    ImageMeta as ImageMeta,
)
from regcli.io import (
    read_channels as read_channels,
    read_image as read_image,
    write_image as write_image,
)
from regcli.many import (
    PairResult as PairResult,
    register_many as register_many,
)
from regcli.metrics import (
    METRICS as METRICS,
    Metric as Metric,
    correlation as correlation,
    gradient_similarity as gradient_similarity,
    mutual_information as mutual_information,
    normalized_mutual_information as normalized_mutual_information,
    pluim as pluim,
    ssd as ssd,
)
from regcli.optimizers import (
    OPTIMIZERS as OPTIMIZERS,
)
from regcli.pyramid import (
    gaussian_pyramid as gaussian_pyramid,
)
from regcli.registration import (
    register as register,
)
from regcli.resample import (
    rotate as rotate,
    translate as translate,
    warp as warp,
)
from regcli.result import (
    RegistrationResult as RegistrationResult,
)
from regcli.stack import (
    StackResult as StackResult,
    iter_register_stack as iter_register_stack,
    register_stack as register_stack,
    warp_frames as warp_frames,
)
from regcli.transforms import (
    TRANSFORMS as TRANSFORMS,
    Transform as Transform,
    compose as compose,
    make_transform as make_transform,
    mean_displacement as mean_displacement,
    rotation_matrix as rotation_matrix,
    translation_matrix as translation_matrix,
)

__version__: str
__all__: list[str]
