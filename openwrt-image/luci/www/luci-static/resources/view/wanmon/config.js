'use strict';
'require view';
'require rpc';
'require ui';

// wanmon's configuration in LuCI. The config file (docs/config.md) stays the one source of
// truth: the form edits the settings users change (links and their order, interface or device,
// bias, targets, holds, the web token, the hook) in a copy of the file's JSON, every other key
// kept as it is; the text editor shows the whole file. Either is checked by the router's own
// `wanmon check-config` before it is saved, every mistake shown with its line and key, and
// applied by a reload; a refused config changes nothing. Text is put into the page with E(),
// never as markup.

var callConfig = rpc.declare({ object: 'wanmon', method: 'config' });
var callSave = rpc.declare({ object: 'wanmon', method: 'save', params: [ 'config' ] });

var GLOBAL_NUMBERS = [
	[ 'hysteresis', _('Hysteresis (score points)') ],
	[ 'switch_hold_ms', _('Switch hold (ms)') ],
	[ 'failback_hold_ms', _('Failback hold (ms)') ],
	[ 'dead_after_ms', _('Dead after (ms)') ]
];

var LINK_FIELDS = [
	[ 'name', _('Name') ],
	[ 'label', _('Label') ],
	[ 'interface', _('Interface') ],
	[ 'device', _('Device') ],
	[ 'bias', _('Bias') ],
	[ 'targets', _('Targets') ]
];

// "1.1.1.1, 8.8.8.8" or "1.1.1.1 8.8.8.8" -> ["1.1.1.1", "8.8.8.8"]
function words(text) {
	return String(text).split(/[\s,]+/).filter(function(w) { return w.length > 0; });
}

// Sets key in object from a field's text: empty removes it (the default applies), a number
// field keeps the text when it is not a number, so check-config names the mistake.
function put(object, key, text, kind) {
	text = String(text).trim();
	if (text === '')
		delete object[key];
	else if (kind === 'number')
		object[key] = /^-?\d+$/.test(text) ? parseInt(text, 10) : text;
	else if (kind === 'list')
		object[key] = words(text);
	else
		object[key] = text;
}

function shown(value) {
	if (value == null)
		return '';
	return Array.isArray(value) ? value.join(' ') : String(value);
}

function field(value, placeholder) {
	return E('input', { 'class': 'cbi-input-text', 'value': shown(value), 'placeholder': placeholder || '' });
}

return view.extend({
	load: function() {
		return callConfig();
	},

	report: function(box, result) {
		if (result && result.errors) {
			box.replaceChildren(
				E('p', {}, [ _('Not saved; the running config is unchanged:') ]),
				E('ul', {}, result.errors.map(function(line) { return E('li', {}, [ line ]); })));
			box.className = 'alert-message warning';
		} else {
			box.replaceChildren(E('p', {}, [ (result && result.message) || _('Saved') ]));
			box.className = 'alert-message notice';
		}
	},

	save: function(text, box) {
		var self = this;
		return callSave(text).then(function(result) { self.report(box, result); return result; });
	},

	// The form's rows into a copy of the parsed file; keys the form does not show are kept.
	collect: function(config, globals, rows) {
		var out = JSON.parse(JSON.stringify(config));
		put(out, 'targets', globals.targets.value, 'list');
		GLOBAL_NUMBERS.forEach(function(g) { put(out, g[0], globals[g[0]].value, 'number'); });
		put(out, 'hook', globals.hook.value, 'list');
		if (globals.token.value.trim() !== '' || (out.web && out.web.token != null)) {
			out.web = out.web || {};
			if (globals.token.value.trim() === '')
				out.web.token = null;
			else
				out.web.token = globals.token.value.trim();
		}
		var links = rows.map(function(row) {
			var link = row.original;
			LINK_FIELDS.forEach(function(f) {
				put(link, f[0], row.inputs[f[0]].value,
					f[0] === 'bias' ? 'number' : (f[0] === 'targets' ? 'list' : 'text'));
			});
			if (row.inputs.enabled.checked)
				delete link.enabled;
			else
				link.enabled = false;
			return link;
		});
		if (links.length > 0)
			out.links = links;
		else
			delete out.links;
		return JSON.stringify(out, null, 2);
	},

	renderGlobals: function(config) {
		var globals = {
			targets: field(config.targets, '1.1.1.1 8.8.8.8'),
			token: field(config.web && config.web.token, _('none: the page is read-only')),
			hook: field(config.hook, '/usr/bin/logger -t wanmon-hook')
		};
		var rows = [
			[ _('Probe targets'), globals.targets ]
		];
		GLOBAL_NUMBERS.forEach(function(g) {
			globals[g[0]] = field(config[g[0]], _('default'));
			rows.push([ g[1], globals[g[0]] ]);
		});
		rows.push([ _('Web page token'), globals.token ], [ _('Hook (program and arguments)'), globals.hook ]);
		var table = E('table', { 'class': 'table' }, rows.map(function(r) {
			return E('tr', { 'class': 'tr' }, [ E('td', { 'class': 'td left' }, [ r[0] ]), E('td', { 'class': 'td' }, [ r[1] ]) ]);
		}));
		return { globals: globals, node: table };
	},

	renderLinks: function(config, rows) {
		var self = this;
		var body = E('tbody', {});
		var draw = function() {
			body.replaceChildren.apply(body, rows.map(function(row, i) {
				var cells = LINK_FIELDS.map(function(f) { return E('td', { 'class': 'td' }, [ row.inputs[f[0]] ]); });
				cells.push(E('td', { 'class': 'td' }, [ row.inputs.enabled ]));
				var move = function(title, label, to) {
					var attrs = { 'class': 'btn', 'title': title,
						'click': function() { rows.splice(to, 0, rows.splice(i, 1)[0]); draw(); } };
					if (to < 0 || to >= rows.length)
						attrs.disabled = 'disabled';
					return E('button', attrs, [ label ]);
				};
				cells.push(E('td', { 'class': 'td' }, [
					move(_('Up'), '↑', i - 1),
					move(_('Down'), '↓', i + 1),
					E('button', { 'class': 'btn cbi-button-remove', 'title': _('Remove'),
						'click': function() { rows.splice(i, 1); draw(); } }, [ '×' ])
				]));
				return E('tr', { 'class': 'tr' }, cells);
			}));
		};
		draw();
		var head = LINK_FIELDS.map(function(f) { return E('th', { 'class': 'th' }, [ f[1] ]); });
		head.push(E('th', { 'class': 'th' }, [ _('Enabled') ]), E('th', { 'class': 'th' }, []));
		return E('div', {}, [
			E('p', {}, [ _('The first link is the preferred one. Give an OpenWrt interface (its device and gateway then come from netifd) or a device. With no links, the interfaces of the firewall zone wan are used.') ]),
			E('table', { 'class': 'table' }, [ E('thead', {}, [ E('tr', { 'class': 'tr' }, head) ]), body ]),
			E('button', { 'class': 'btn cbi-button-add', 'click': function() { rows.push(self.row({})); draw(); } }, [ _('Add link') ])
		]);
	},

	row: function(link) {
		var inputs = {};
		LINK_FIELDS.forEach(function(f) { inputs[f[0]] = field(link[f[0]]); });
		var box = { 'type': 'checkbox' };
		if (link.enabled !== false)
			box.checked = 'checked';
		inputs.enabled = E('input', box);
		return { original: JSON.parse(JSON.stringify(link)), inputs: inputs };
	},

	render: function(loaded) {
		var self = this;
		var text = (loaded && loaded.config) || '';
		var box = E('div', {});
		var area = E('textarea', {
			'class': 'cbi-input-textarea', 'style': 'width:100%;font-family:monospace',
			'rows': 24, 'spellcheck': 'false'
		}, [ text ]);
		var config = null;
		try { config = JSON.parse(text); } catch (e) { config = null; }
		var form;
		if (config && typeof config === 'object' && !Array.isArray(config)) {
			var rows = (Array.isArray(config.links) ? config.links : []).map(function(l) { return self.row(l || {}); });
			var globals = this.renderGlobals(config);
			form = E('div', { 'id': 'wanmon-form' }, [
				E('h3', {}, [ _('Settings') ]), globals.node,
				E('h3', {}, [ _('Links') ]), this.renderLinks(config, rows),
				E('button', { 'class': 'btn cbi-button-save', 'id': 'wanmon-form-save',
					'click': ui.createHandlerFn(self, function() {
						var saved = self.collect(config, globals.globals, rows);
						return self.save(saved, box).then(function(result) {
							if (!result || !result.errors)
								area.value = saved;
						});
					}) }, [ _('Check, save and apply') ])
			]);
		} else {
			form = E('p', {}, [ _('The file is not a JSON object: edit it as text below.') ]);
		}
		return E('div', { 'class': 'cbi-map' }, [
			E('h2', {}, [ _('WAN failover (wanmon): configuration') ]),
			E('p', {}, [ _('Saving checks the config first; a config with mistakes is not saved.') ]),
			box,
			form,
			E('details', {}, [
				E('summary', {}, [ _('Edit as text (every key, docs/config.md)') ]),
				area,
				E('button', { 'class': 'btn cbi-button-save', 'id': 'wanmon-text-save',
					'click': ui.createHandlerFn(self, function() { return self.save(area.value, box); })
				}, [ _('Check, save and apply the text') ])
			])
		]);
	},

	handleSaveApply: null,
	handleSave: null,
	handleReset: null
});
