-- Protocol amendments: every approved study definition version (its files, as published) and
-- each site's activations. Laptops receive a version and an activation as the server's own
-- signed changes (`study.publish`, `site.activate`) in the site's chain; `study_sent` records
-- which versions a site's chain already carries.
CREATE TABLE study_versions (
    version   TEXT PRIMARY KEY,
    files     TEXT NOT NULL,
    sha256    TEXT NOT NULL,
    published TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE site_activations (
    site      TEXT NOT NULL REFERENCES sites (code),
    from_date TEXT NOT NULL, -- YYYY-MM-DD, the site's local date
    version   TEXT NOT NULL,
    activated TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (site, from_date)
);

CREATE TABLE study_sent (
    site    TEXT NOT NULL REFERENCES sites (code),
    version TEXT NOT NULL,
    PRIMARY KEY (site, version)
);
