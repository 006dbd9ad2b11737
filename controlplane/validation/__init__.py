"""Defaulting and validation of API objects, and the 422 Status for invalid ones.

Server wiring, on create and update of a main resource (not status/scale subresources):

    apply_defaults(resource, obj)
    errors = validate(resource, obj, old)          # old=None on create
    if errors: respond 422 with status_for(errors, resource.kind, name, resource.group)

On a Service update, before defaulting: `drop_type_dependent_fields(new, old)` (leaving NodePort drops
the allocated node ports instead of failing validation).

Unknown fields, before defaulting (create, update and the result of a patch):

    unknown = prune_unknown_fields(resource, obj)   # removes them in place
    if unknown and fieldValidation == "Strict": 400 BadRequest strict_decoding_message(resource, unknown)
    elif unknown and fieldValidation == "Warn": a `Warning: 299 - "unknown field \"<path>\""` header each
"""

from controlplane.validation.defaults import apply_defaults, drop_type_dependent_fields, image_pull_policy
from controlplane.validation.errors import FieldError, status_for
from controlplane.validation.fields import prune_unknown_fields, strict_decoding_message
from controlplane.validation.quantity import QuantityError, format_quantity, parse_quantity
from controlplane.validation.validate import validate

__all__ = [
    "FieldError",
    "QuantityError",
    "apply_defaults",
    "drop_type_dependent_fields",
    "format_quantity",
    "image_pull_policy",
    "parse_quantity",
    "prune_unknown_fields",
    "status_for",
    "strict_decoding_message",
    "validate",
]
