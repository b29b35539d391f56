// Schema creation and forward migration (migrate.c), for store_open.
#ifndef PROMOE_STORE_MIGRATE_H
#define PROMOE_STORE_MIGRATE_H

struct store;

// Creates or migrates the schema of a freshly opened store to STORE_SCHEMA_VERSION (migrate.c),
// refusing a newer version or a file that is not a promoe database.
int store_migrate(struct store *db);

#endif
