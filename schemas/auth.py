from __future__ import annotations

from marshmallow import Schema, fields, validate

from schemas.common import doc


class TokenIn(Schema):
    username = fields.String(required=True, validate=validate.Length(1, 64),
                             metadata=doc("The person's username.", "officer"))
    password = fields.String(required=True, validate=validate.Length(1, 256),
                             metadata=doc("The person's password.", "correct horse battery staple"))


class TokenOut(Schema):
    access_token = fields.String()
    token_type = fields.String()
    expires_in = fields.Integer()
