-- A version's CHANGELOG.md, kept beside its README for the plugin page's Changelog tab.
-- Versions published before have none.
ALTER TABLE versions ADD COLUMN changelog TEXT;
