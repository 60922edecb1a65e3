'use strict';
'require view';
'require rpc';
'require ui';

// wanmon's configuration in LuCI: the config file (docs/config.md) edited as text, checked by the
// router's own `wanmon check-config` before it is saved, every mistake shown with its line and
// key, and applied by a reload; a refused config changes nothing. Text is put into the page with
// E(), never as markup.

var callConfig = rpc.declare({ object: 'wanmon', method: 'config' });
var callSave = rpc.declare({ object: 'wanmon', method: 'save', params: [ 'config' ] });

return view.extend({
	load: function() {
		return callConfig();
	},

	save: function(area, report) {
		return callSave(area.value).then(function(result) {
			if (result && result.errors) {
				report.replaceChildren(
					E('p', {}, [ _('Not saved; the running config is unchanged:') ]),
					E('ul', {}, result.errors.map(function(line) { return E('li', {}, [ line ]); })));
				report.className = 'alert-message warning';
			} else {
				report.replaceChildren(E('p', {}, [ (result && result.message) || _('Saved') ]));
				report.className = 'alert-message notice';
			}
		});
	},

	render: function(loaded) {
		var self = this;
		var area = E('textarea', {
			'class': 'cbi-input-textarea',
			'style': 'width:100%;font-family:monospace',
			'rows': 24,
			'spellcheck': 'false'
		}, [ (loaded && loaded.config) || '' ]);
		var report = E('div', {});
		return E('div', { 'class': 'cbi-map' }, [
			E('h2', {}, [ _('WAN failover (wanmon): configuration') ]),
			E('p', {}, [ _('Links, probe targets, holds and the web page, as described in docs/config.md. Saving checks the text first; a config with mistakes is not saved.') ]),
			area,
			report,
			E('button', {
				'class': 'btn cbi-button-save',
				'click': ui.createHandlerFn(self, function() { return self.save(area, report); })
			}, [ _('Check, save and apply') ])
		]);
	},

	handleSaveApply: null,
	handleSave: null,
	handleReset: null
});
