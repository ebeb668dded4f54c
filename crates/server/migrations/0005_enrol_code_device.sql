-- An enrolment code names, when it is made, the one new device it may enrol
-- (`ecrf device enrol-code --site S --device ID`). Codes made before this column existed name no
-- device and are refused ("ask for a new one").
ALTER TABLE enrol_codes ADD COLUMN device TEXT;
