"""The solution schema installer: the declared schema (``spec``), its diff with the live one
(``plan``), the metadata Web API bodies (``payloads``), and ``connector schema apply``
(``installer``)."""
