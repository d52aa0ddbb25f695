// wechatpay-axios-plugin against the simulator: its own signing and answer verification.
// node axios_plugin.js STATE_DIR/credentials.json [partner|direct] [public-key|certificate]
// Needs `npm install wechatpay-axios-plugin axios` (NODE_PATH pointing at its node_modules)
// and a running wxpay-simulator; every answer is verified by the plugin itself.
const { readFileSync } = require('fs');
const http = require('http');
const axios = require('axios');
const { Wechatpay, Rsa, Formatter, Aes } = require('wechatpay-axios-plugin');

const creds = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const partner = (process.argv[3] || 'partner') === 'partner';
const mode = process.argv[4] || 'public-key';
const SUB = '1900000109';
const publicKey = mode === 'public-key'
  ? readFileSync(creds.wechatpay_public_key_path)
  : readFileSync(creds.platform_certificate_path);
const keyId = mode === 'public-key' ? creds.wechatpay_public_key_id : creds.platform_certificate_serial;
const wxpay = new Wechatpay({
  mchid: creds.mchid,
  serial: creds.merchant_serial_no,
  privateKey: readFileSync(creds.private_key_path),
  certs: { [keyId]: publicKey },
  baseURL: creds.base_url,
});
const control = axios.create({ baseURL: `${creds.base_url}/_simulator/` });

(async () => {
  const seen = [];
  const shop = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c)).on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const h = req.headers;
      const ok = Rsa.verify(
        Formatter.joinedByLineFeed(h['wechatpay-timestamp'], h['wechatpay-nonce'], body),
        h['wechatpay-signature'], Rsa.from(publicKey, Rsa.KEY_TYPE_PUBLIC))
        && h['wechatpay-serial'] === keyId;
      const { resource } = JSON.parse(body);
      const plain = Aes.AesGcm.decrypt(resource.ciphertext, creds.apiv3_key, resource.nonce,
        resource.associated_data);
      seen.push({ ok, plain: JSON.parse(plain) });
      res.writeHead(ok ? 204 : 401).end();
    });
  }).listen(0, '127.0.0.1');
  await new Promise((r) => shop.on('listening', r));
  const notify = `http://127.0.0.1:${shop.address().port}/notify/`;

  await control.post('config', { mode });
  const { data: payment } = await control.post('payments', { total: 1000, sub_mchid: partner ? SUB : null });
  const tx = payment.transaction_id;
  const query = partner
    ? await wxpay.v3.pay.partner.transactions.id._transaction_id_.get({ params: { sp_mchid: creds.mchid, sub_mchid: SUB }, transaction_id: tx })
    : await wxpay.v3.pay.transactions.id._transaction_id_.get({ params: { mchid: creds.mchid }, transaction_id: tx });
  console.log('query', query.status, query.data.trade_state, query.data.amount.total);
  const amounts = await wxpay.v3.profitsharing.transactions._transaction_id_.amounts.get({ transaction_id: tx });
  console.log('amounts', amounts.status, amounts.data.unsplit_amount);
  const no = `RNODE${Date.now()}`;
  const refund = await wxpay.v3.refund.domestic.refunds.post({
    ...(partner ? { sub_mchid: SUB } : {}), transaction_id: tx, out_refund_no: no, reason: '商品已售完',
    notify_url: notify, amount: { refund: 300, total: 1000, currency: 'CNY' },
  });
  console.log('refund', refund.status, refund.data.status, refund.data.refund_id);
  const queried = await wxpay.v3.refund.domestic.refunds._out_refund_no_.get({ out_refund_no: no, ...(partner ? { params: { sub_mchid: SUB } } : {}) });
  console.log('query_refund', queried.status, queried.data.status);
  const unfreeze = await wxpay.v3.profitsharing.orders.unfreeze.post({
    ...(partner ? { sub_mchid: SUB } : {}), transaction_id: tx, out_order_no: `U${no}`, description: '解冻全部剩余资金',
  });
  console.log('unfreeze', unfreeze.status, unfreeze.data.state, unfreeze.data.receivers[0].amount);
  await new Promise((r) => setTimeout(r, 1500));
  console.log('notification', JSON.stringify(seen.map((s) => [s.ok, s.plain.refund_status, s.plain.out_refund_no === no])));
  await control.post('config', { mode: 'public-key' });
  shop.close();
})().catch((e) => { console.error('FAILED', e.response ? [e.response.status, e.response.data] : e); process.exit(1); });
