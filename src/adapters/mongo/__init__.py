"""MongoDB adapters (production cache store and ticket log), written against the collection methods
motor, PyMongo's AsyncMongoClient and mongomock-motor share."""
