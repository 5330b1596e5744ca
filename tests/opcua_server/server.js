// An OPC UA server this project did not write (node-opcua), for the gateway's security tests.
// usage: node server.js PORT PKI_DIR MODE   (MODE: Sign or SignAndEncrypt)
// Unknown client certificates are rejected and filed in PKI_DIR/rejected, as most servers do;
// a test trusts one by moving it to PKI_DIR/trusted/certs. Prints "ready URL" once listening.
"use strict";
const { OPCUAServer } = require("node-opcua-server");
const { OPCUACertificateManager } = require("node-opcua-certificate-manager");
const { MessageSecurityMode, SecurityPolicy } = require("node-opcua-secure-channel");
const { DataType } = require("node-opcua-variant");
const { nodesets } = require("node-opcua-nodesets");

async function main() {
  const [port, pkiDir, mode] = process.argv.slice(2);
  const serverCertificateManager = new OPCUACertificateManager({
    rootFolder: pkiDir,
    automaticallyAcceptUnknownCertificate: false,
  });
  await serverCertificateManager.initialize();
  const server = new OPCUAServer({
    port: Number(port),
    hostname: "127.0.0.1",
    resourcePath: "/plant",
    serverCertificateManager,
    securityPolicies: [SecurityPolicy.Basic256Sha256],
    securityModes: [MessageSecurityMode[mode]],
    allowAnonymous: true,
    nodeset_filename: [nodesets.standard],
  });
  await server.initialize();
  const addressSpace = server.engine.addressSpace;
  addressSpace.getOwnNamespace().addVariable({
    organizedBy: addressSpace.rootFolder.objects,
    browseName: "Temperature",
    nodeId: "s=Temperature",
    dataType: "Double",
    value: { dataType: DataType.Double, value: 21.5 },
  });
  await server.start();
  console.log(`ready ${server.getEndpointUrl()}`);
  const stop = async () => {
    await server.shutdown(0);
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
