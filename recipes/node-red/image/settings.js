// Node-RED settings for Commonshelf. Lives in the image (/opt/node-red/settings.js),
// not in the data volume, so an update brings the new settings; flows, credentials
// and installed nodes live in the userDir (/var/lib/node-red/userdir, in the `data` volume).
//
// Secrets come from Swarm secrets (files), never from the environment:
//   /run/secrets/credential_secret  encrypts flows_cred.json
//   /run/secrets/admin_password     the editor/admin API password of user "admin"
"use strict";

const fs = require("fs");
const bcrypt = require("bcryptjs"); // shipped with node-red (/opt/node-red/node_modules)

function secret(name) {
    const file = "/run/secrets/" + name;
    let value;
    try {
        value = fs.readFileSync(file, "utf8").trim();
    } catch (err) {
        throw new Error("Node-RED needs the secret " + file + " (" + err.code + ")");
    }
    if (!value) {
        throw new Error("The secret " + file + " is empty");
    }
    return value;
}

const adminUser = process.env.NODE_RED_ADMIN_USER || "admin";

module.exports = {
    uiHost: "0.0.0.0",
    uiPort: 1880,
    userDir: "/var/lib/node-red/userdir",
    flowFile: "flows.json",
    flowFilePretty: true,
    credentialSecret: secret("credential_secret"),

    adminAuth: {
        type: "credentials",
        users: [
            {
                username: adminUser,
                password: bcrypt.hashSync(secret("admin_password"), 10),
                permissions: "*",
            },
        ],
    },

    httpAdminRoot: "/",
    httpNodeRoot: "/",

    // No outbound calls on its own: no update checks or usage reports.
    telemetry: { enabled: false },
    diagnostics: { enabled: true, ui: true },
    runtimeState: { enabled: false, ui: false },

    logging: {
        console: { level: "info", metrics: false, audit: false },
    },

    exportGlobalContextKeys: false,
    externalModules: {},

    editorTheme: {
        projects: { enabled: false },
        codeEditor: { lib: "monaco" },
        tours: false,
    },

    functionExternalModules: true,
    functionTimeout: 0,
    functionGlobalContext: {},
    debugMaxLength: 1000,
    mqttReconnectTime: 15000,
    serialReconnectTime: 15000,
};
