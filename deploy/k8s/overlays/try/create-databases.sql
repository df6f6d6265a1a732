-- One database per service, as in production: each owns its data.
CREATE DATABASE restaurant OWNER dishpatch;
CREATE DATABASE orders OWNER dishpatch;
CREATE DATABASE notify OWNER dishpatch;
