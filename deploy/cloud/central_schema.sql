-- The central cloud's MariaDB/MySQL schema: EES master data synced DOWN to every edge, and the
-- tables edges push UP into. Apply with `mariadb DB < central_schema.sql` (MariaDB >= 10.3, tested
-- on 10.11; MySQL >= 8.0.29 for CREATE TRIGGER IF NOT EXISTS, untested); edge_node.cloud.schema
-- .apply_schema() runs the same file from Python.
--
-- Master data versioning: every insert, update and delete of a master-data row takes the next
-- number from md_version (one row, locked until the writer commits), so versions are handed
-- out in commit order and an edge that has seen version V has seen every change <= V. The
-- triggers set `version`; applications never write it. Deletes leave a tombstone in
-- md_deletions; retiring a row (retired = 1) is the usual way and keeps history readable.
--
-- Push tables: every row is keyed by (edge_id, natural key), so an edge re-sending after an
-- outage upserts the same rows (INSERT ... ON DUPLICATE KEY UPDATE): pushing twice is harmless.
-- Times are UTC (DATETIME(3)); the edge sets time_zone = '+00:00' on its sessions.

CREATE TABLE IF NOT EXISTS md_version (
    id TINYINT PRIMARY KEY,
    v BIGINT NOT NULL
) ENGINE=InnoDB;
INSERT IGNORE INTO md_version (id, v) VALUES (1, 0);

CREATE TABLE IF NOT EXISTS md_deletions (
    version BIGINT PRIMARY KEY,
    table_name VARCHAR(64) NOT NULL,
    key_json VARCHAR(700) NOT NULL,          -- JSON array of the deleted row's key columns
    deleted_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS equipment (
    id VARCHAR(64) PRIMARY KEY,              -- e.g. anodizing-tank-3
    name VARCHAR(200) NOT NULL,
    line VARCHAR(64) NOT NULL DEFAULT '',
    kind VARCHAR(64) NOT NULL DEFAULT '',
    description TEXT,
    retired TINYINT(1) NOT NULL DEFAULT 0,
    version BIGINT NOT NULL DEFAULT 0,
    updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    KEY equipment_version (version)
) ENGINE=InnoDB;

-- A tag is one series on an edge, named gateway/device/tag as in the wire format.
CREATE TABLE IF NOT EXISTS tags (
    gateway VARCHAR(64) NOT NULL,
    device VARCHAR(64) NOT NULL,
    tag VARCHAR(128) NOT NULL,
    equipment_id VARCHAR(64),
    unit VARCHAR(32),
    description TEXT,
    retired TINYINT(1) NOT NULL DEFAULT 0,
    version BIGINT NOT NULL DEFAULT 0,
    updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    PRIMARY KEY (gateway, device, tag),
    KEY tags_version (version),
    KEY tags_equipment (equipment_id)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS recipes (
    id VARCHAR(64) PRIMARY KEY,
    name VARCHAR(200) NOT NULL,
    description TEXT,
    retired TINYINT(1) NOT NULL DEFAULT 0,
    version BIGINT NOT NULL DEFAULT 0,
    updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    KEY recipes_version (version)
) ENGINE=InnoDB;

-- One setpoint of a recipe: a number (value) or a text (text_value), with its unit.
CREATE TABLE IF NOT EXISTS recipe_parameters (
    recipe_id VARCHAR(64) NOT NULL,
    name VARCHAR(128) NOT NULL,
    value DOUBLE,
    text_value VARCHAR(255),
    unit VARCHAR(32),
    retired TINYINT(1) NOT NULL DEFAULT 0,
    version BIGINT NOT NULL DEFAULT 0,
    updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    PRIMARY KEY (recipe_id, name),
    KEY recipe_parameters_version (version)
) ENGINE=InnoDB;

-- The limits the cloud computed for one tag. limits_version counts revisions of this tag's
-- limits (the SPC engine shows which limits an alarm used); version is the sync counter.
CREATE TABLE IF NOT EXISTS control_limits (
    gateway VARCHAR(64) NOT NULL,
    device VARCHAR(64) NOT NULL,
    tag VARCHAR(128) NOT NULL,
    lsl DOUBLE,                              -- specification limits (customer)
    usl DOUBLE,
    lcl DOUBLE,                              -- control limits (process, mean +- 3 sigma)
    ucl DOUBLE,
    mean DOUBLE,
    sigma DOUBLE,
    limits_version INT NOT NULL DEFAULT 1,
    computed_at DATETIME(3),
    retired TINYINT(1) NOT NULL DEFAULT 0,
    version BIGINT NOT NULL DEFAULT 0,
    updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    PRIMARY KEY (gateway, device, tag),
    KEY control_limits_version (version)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS products (
    id VARCHAR(64) PRIMARY KEY,              -- the product id the line reports
    name VARCHAR(200) NOT NULL DEFAULT '',
    recipe_id VARCHAR(64),
    retired TINYINT(1) NOT NULL DEFAULT 0,
    version BIGINT NOT NULL DEFAULT 0,
    updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    KEY products_version (version),
    KEY products_recipe (recipe_id)
) ENGINE=InnoDB;

-- ---------------------------------------------------------------- pushed up by the edges

-- Per series and UTC minute: what the edge computed at ingest (never recomputed here).
CREATE TABLE IF NOT EXISTS minute_summaries (
    edge_id VARCHAR(64) NOT NULL,
    series VARCHAR(260) NOT NULL,            -- gateway/device/tag
    minute DATETIME NOT NULL,                -- start of the minute, UTC
    n INT NOT NULL,
    min_value DOUBLE NOT NULL,
    max_value DOUBLE NOT NULL,
    sum_value DOUBLE NOT NULL,
    mean_value DOUBLE NOT NULL,
    pushed_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    PRIMARY KEY (edge_id, series, minute),
    KEY minute_summaries_minute (minute)
) ENGINE=InnoDB;

-- State changes of text series (equipment state, current product id) and events from rules.
CREATE TABLE IF NOT EXISTS events (
    edge_id VARCHAR(64) NOT NULL,
    event_key VARCHAR(300) NOT NULL,         -- series@ts_ns for changes; the rule's key else
    kind VARCHAR(64) NOT NULL,               -- change | the rule's event name
    series VARCHAR(260),
    ts DATETIME(3) NOT NULL,
    value TEXT,
    payload JSON,
    pushed_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    PRIMARY KEY (edge_id, event_key),
    KEY events_ts (ts),
    KEY events_series_ts (series, ts)
) ENGINE=InnoDB;

-- One row per alarm, updated as it is acknowledged and cleared (same key, newer state).
CREATE TABLE IF NOT EXISTS alarms (
    edge_id VARCHAR(64) NOT NULL,
    alarm_key VARCHAR(300) NOT NULL,
    series VARCHAR(260),
    rule VARCHAR(128),
    severity VARCHAR(32),
    state VARCHAR(32),                       -- raised | acknowledged | cleared
    message TEXT,
    raised_at DATETIME(3),
    acknowledged_at DATETIME(3),
    acknowledged_by VARCHAR(128),
    cleared_at DATETIME(3),
    payload JSON,
    pushed_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    PRIMARY KEY (edge_id, alarm_key),
    KEY alarms_raised (raised_at)
) ENGINE=InnoDB;

-- The paper's case: a defect-level measurement of a product, with its recipe.
CREATE TABLE IF NOT EXISTS defects (
    edge_id VARCHAR(64) NOT NULL,
    defect_key VARCHAR(300) NOT NULL,
    ts DATETIME(3) NOT NULL,
    product_id VARCHAR(64),
    recipe_id VARCHAR(64),
    series VARCHAR(260),
    value DOUBLE,
    rule VARCHAR(128),
    payload JSON,
    pushed_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    PRIMARY KEY (edge_id, defect_key),
    KEY defects_product (product_id),
    KEY defects_ts (ts)
) ENGINE=InnoDB;

-- ---------------------------------------------------------------- version triggers

DELIMITER //
CREATE TRIGGER IF NOT EXISTS equipment_bi BEFORE INSERT ON equipment FOR EACH ROW BEGIN
    UPDATE md_version SET v = LAST_INSERT_ID(v + 1) WHERE id = 1; SET NEW.version = LAST_INSERT_ID();
END//
CREATE TRIGGER IF NOT EXISTS equipment_bu BEFORE UPDATE ON equipment FOR EACH ROW BEGIN
    UPDATE md_version SET v = LAST_INSERT_ID(v + 1) WHERE id = 1; SET NEW.version = LAST_INSERT_ID();
END//
CREATE TRIGGER IF NOT EXISTS equipment_ad AFTER DELETE ON equipment FOR EACH ROW BEGIN
    UPDATE md_version SET v = LAST_INSERT_ID(v + 1) WHERE id = 1;
    INSERT INTO md_deletions (version, table_name, key_json)
        VALUES (LAST_INSERT_ID(), 'equipment', JSON_ARRAY(OLD.id));
END//
CREATE TRIGGER IF NOT EXISTS tags_bi BEFORE INSERT ON tags FOR EACH ROW BEGIN
    UPDATE md_version SET v = LAST_INSERT_ID(v + 1) WHERE id = 1; SET NEW.version = LAST_INSERT_ID();
END//
CREATE TRIGGER IF NOT EXISTS tags_bu BEFORE UPDATE ON tags FOR EACH ROW BEGIN
    UPDATE md_version SET v = LAST_INSERT_ID(v + 1) WHERE id = 1; SET NEW.version = LAST_INSERT_ID();
END//
CREATE TRIGGER IF NOT EXISTS tags_ad AFTER DELETE ON tags FOR EACH ROW BEGIN
    UPDATE md_version SET v = LAST_INSERT_ID(v + 1) WHERE id = 1;
    INSERT INTO md_deletions (version, table_name, key_json)
        VALUES (LAST_INSERT_ID(), 'tags', JSON_ARRAY(OLD.gateway, OLD.device, OLD.tag));
END//
CREATE TRIGGER IF NOT EXISTS recipes_bi BEFORE INSERT ON recipes FOR EACH ROW BEGIN
    UPDATE md_version SET v = LAST_INSERT_ID(v + 1) WHERE id = 1; SET NEW.version = LAST_INSERT_ID();
END//
CREATE TRIGGER IF NOT EXISTS recipes_bu BEFORE UPDATE ON recipes FOR EACH ROW BEGIN
    UPDATE md_version SET v = LAST_INSERT_ID(v + 1) WHERE id = 1; SET NEW.version = LAST_INSERT_ID();
END//
CREATE TRIGGER IF NOT EXISTS recipes_ad AFTER DELETE ON recipes FOR EACH ROW BEGIN
    UPDATE md_version SET v = LAST_INSERT_ID(v + 1) WHERE id = 1;
    INSERT INTO md_deletions (version, table_name, key_json)
        VALUES (LAST_INSERT_ID(), 'recipes', JSON_ARRAY(OLD.id));
END//
CREATE TRIGGER IF NOT EXISTS recipe_parameters_bi BEFORE INSERT ON recipe_parameters FOR EACH ROW BEGIN
    UPDATE md_version SET v = LAST_INSERT_ID(v + 1) WHERE id = 1; SET NEW.version = LAST_INSERT_ID();
END//
CREATE TRIGGER IF NOT EXISTS recipe_parameters_bu BEFORE UPDATE ON recipe_parameters FOR EACH ROW BEGIN
    UPDATE md_version SET v = LAST_INSERT_ID(v + 1) WHERE id = 1; SET NEW.version = LAST_INSERT_ID();
END//
CREATE TRIGGER IF NOT EXISTS recipe_parameters_ad AFTER DELETE ON recipe_parameters FOR EACH ROW BEGIN
    UPDATE md_version SET v = LAST_INSERT_ID(v + 1) WHERE id = 1;
    INSERT INTO md_deletions (version, table_name, key_json)
        VALUES (LAST_INSERT_ID(), 'recipe_parameters', JSON_ARRAY(OLD.recipe_id, OLD.name));
END//
CREATE TRIGGER IF NOT EXISTS control_limits_bi BEFORE INSERT ON control_limits FOR EACH ROW BEGIN
    UPDATE md_version SET v = LAST_INSERT_ID(v + 1) WHERE id = 1; SET NEW.version = LAST_INSERT_ID();
END//
CREATE TRIGGER IF NOT EXISTS control_limits_bu BEFORE UPDATE ON control_limits FOR EACH ROW BEGIN
    UPDATE md_version SET v = LAST_INSERT_ID(v + 1) WHERE id = 1; SET NEW.version = LAST_INSERT_ID();
END//
CREATE TRIGGER IF NOT EXISTS control_limits_ad AFTER DELETE ON control_limits FOR EACH ROW BEGIN
    UPDATE md_version SET v = LAST_INSERT_ID(v + 1) WHERE id = 1;
    INSERT INTO md_deletions (version, table_name, key_json)
        VALUES (LAST_INSERT_ID(), 'control_limits', JSON_ARRAY(OLD.gateway, OLD.device, OLD.tag));
END//
CREATE TRIGGER IF NOT EXISTS products_bi BEFORE INSERT ON products FOR EACH ROW BEGIN
    UPDATE md_version SET v = LAST_INSERT_ID(v + 1) WHERE id = 1; SET NEW.version = LAST_INSERT_ID();
END//
CREATE TRIGGER IF NOT EXISTS products_bu BEFORE UPDATE ON products FOR EACH ROW BEGIN
    UPDATE md_version SET v = LAST_INSERT_ID(v + 1) WHERE id = 1; SET NEW.version = LAST_INSERT_ID();
END//
CREATE TRIGGER IF NOT EXISTS products_ad AFTER DELETE ON products FOR EACH ROW BEGIN
    UPDATE md_version SET v = LAST_INSERT_ID(v + 1) WHERE id = 1;
    INSERT INTO md_deletions (version, table_name, key_json)
        VALUES (LAST_INSERT_ID(), 'products', JSON_ARRAY(OLD.id));
END//
DELIMITER ;
