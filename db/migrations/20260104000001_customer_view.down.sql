DROP TABLE IF EXISTS csat_unsubscribes;
DROP INDEX IF EXISTS surveys_unsubscribe;
ALTER TABLE surveys DROP COLUMN IF EXISTS unsubscribe_hash;
ALTER TABLE csat_configs
    DROP COLUMN IF EXISTS brand_name,
    DROP COLUMN IF EXISTS logo_url,
    DROP COLUMN IF EXISTS accent_color,
    DROP COLUMN IF EXISTS default_locale,
    DROP COLUMN IF EXISTS email_subject,
    DROP COLUMN IF EXISTS email_message,
    DROP COLUMN IF EXISTS button_labels;
